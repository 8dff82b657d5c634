// idempotency-key for non-streaming calls: the same key with the same body within the TTL gets
// the stored answer without a second upstream call; a duplicate that arrives while the first is
// in flight waits for it; the same key with another body is a client bug and gets 409. Only
// successful answers are kept: a failed call may be retried with its key.
import { createHash } from 'node:crypto';

export interface StoredAnswer {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

interface Entry {
  hash: string;
  expiresAt: number;
  answer?: StoredAnswer;
  pending?: Promise<StoredAnswer | undefined>;
}

export type Claim =
  | { kind: 'first'; finish: (answer: StoredAnswer | undefined) => void }
  | { kind: 'replay'; answer: StoredAnswer }
  | { kind: 'conflict' };

export function bodyHash(body: Buffer): string {
  return createHash('sha256').update(body).digest('base64url');
}

export class IdempotencyCache {
  private readonly entries = new Map<string, Entry>();
  private readonly maxEntries: number;

  constructor(maxEntries = 10_000) {
    this.maxEntries = maxEntries;
  }

  get size(): number {
    return this.entries.size;
  }

  /** Claims a key for this body: the caller either makes the call (then `finish`es) or replays. */
  async claim(scope: string, key: string, hash: string, ttlMs: number, now: () => number = Date.now): Promise<Claim> {
    const id = `${scope}\u0000${key}`;
    for (;;) {
      const found = this.entries.get(id);
      if (found && found.expiresAt <= now()) this.entries.delete(id);
      const entry = found && found.expiresAt > now() ? found : undefined;
      if (!entry) break;
      if (entry.hash !== hash) return { kind: 'conflict' };
      if (entry.answer) return { kind: 'replay', answer: entry.answer };
      const answer = await entry.pending;
      if (answer) return { kind: 'replay', answer };
      // The first call failed and dropped its claim: this one may try for itself.
    }
    let done!: (a: StoredAnswer | undefined) => void;
    const entry: Entry = { hash, expiresAt: now() + ttlMs, pending: new Promise((r) => (done = r)) };
    this.entries.set(id, entry);
    this.evict();
    return {
      kind: 'first',
      finish: (answer) => {
        entry.pending = undefined;
        if (answer && answer.status < 300) {
          entry.answer = answer;
          entry.expiresAt = now() + ttlMs;
        } else if (this.entries.get(id) === entry) {
          this.entries.delete(id);
        }
        done(answer && answer.status < 300 ? answer : undefined);
      },
    };
  }

  private evict(): void {
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
  }
}
