// The human review queue: answers that broke a route's output contract, and inputs moderation
// flagged, held for a person instead of being returned or refused outright. Items are files in
// `<state-dir>/reviews` (one JSON file each, written by rename, so a crash leaves the old or the
// new item, never half of one); without a state dir they live in memory and a restart loses them.
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export type ReviewReason = 'output_invalid' | 'moderation_flagged';
export type ReviewStatus = 'pending' | 'approved' | 'rejected' | 'edited';
export type ReviewAction = 'approve' | 'reject' | 'edit';

export interface ReviewDecision {
  at: string;
  reviewer?: string;
  note?: string;
  /** The answer the app gets: the model's (approve) or the reviewer's (edit). */
  answer?: unknown;
  /** An approved moderation review lets its input through once; then it is used. */
  used?: boolean;
}

export interface ReviewItem {
  id: string;
  route: string;
  endpoint: string;
  model: string;
  promptVersion?: string;
  reason: ReviewReason;
  /** Validation errors, or the moderation categories. */
  details: string[];
  /** The request as it was sent upstream (after redaction and the route prompt). */
  request: unknown;
  /** The model's answer (output reviews). */
  answer?: unknown;
  /** Digest of the moderated input texts: what a resubmission must match. */
  inputDigest?: string;
  createdAt: string;
  expiresAt: number;
  status: ReviewStatus;
  decision?: ReviewDecision;
}

const ID = /^rev_[0-9a-f]{24}$/;

/** What a queue does, wherever it keeps its items (files here, or Redis for every replica). */
export interface Reviews {
  readonly durable: boolean;
  add(item: Omit<ReviewItem, 'id' | 'status' | 'createdAt' | 'expiresAt'>, retentionMs: number, now?: number): Promise<ReviewItem>;
  get(id: string, now?: number): Promise<ReviewItem | undefined>;
  list(status?: ReviewStatus, now?: number): Promise<ReviewItem[]>;
  decide(id: string, action: ReviewAction, decision: Omit<ReviewDecision, 'at' | 'used'>, now?: number): Promise<ReviewItem>;
  /** Marks an approved moderation review as spent; false when it already was (or is not approved). */
  use(id: string): Promise<boolean>;
  sweep(now?: number): Promise<number>;
  close?(): Promise<void>;
}

/** A new item's id and bookkeeping. */
export function newItem(item: Omit<ReviewItem, 'id' | 'status' | 'createdAt' | 'expiresAt'>, retentionMs: number, now: number): ReviewItem {
  return { ...item, id: `rev_${randomBytes(12).toString('hex')}`, status: 'pending', createdAt: new Date(now).toISOString(), expiresAt: now + retentionMs };
}

/** The item after a reviewer's decision. */
export function decided(item: ReviewItem, action: ReviewAction, decision: Omit<ReviewDecision, 'at' | 'used'>, now: number): ReviewItem {
  const status: ReviewStatus = action === 'approve' ? 'approved' : action === 'reject' ? 'rejected' : 'edited';
  const answer = action === 'approve' ? item.answer : action === 'edit' ? decision.answer : undefined;
  return { ...item, status, decision: { at: new Date(now).toISOString(), ...(decision.reviewer ? { reviewer: decision.reviewer } : {}), ...(decision.note ? { note: decision.note } : {}), ...(answer !== undefined ? { answer } : {}) } };
}

export class ReviewStore implements Reviews {
  private readonly items = new Map<string, ReviewItem>();
  private readonly dir: string | undefined;

  private constructor(dir: string | undefined) {
    this.dir = dir;
  }

  /** Opens the queue, reading back what an earlier process left in `dir`. */
  static async open(dir?: string, now = Date.now()): Promise<ReviewStore> {
    const store = new ReviewStore(dir);
    if (!dir) return store;
    await mkdir(dir, { recursive: true });
    for (const name of await readdir(dir)) {
      if (!name.endsWith('.json')) continue;
      try {
        const item = JSON.parse(await readFile(join(dir, name), 'utf8')) as ReviewItem;
        if (ID.test(item.id)) store.items.set(item.id, item);
      } catch {
        // A file that does not parse was never renamed into place whole: nothing to recover.
      }
    }
    await store.sweep(now);
    return store;
  }

  get durable(): boolean {
    return this.dir !== undefined;
  }

  async add(item: Omit<ReviewItem, 'id' | 'status' | 'createdAt' | 'expiresAt'>, retentionMs: number, now = Date.now()): Promise<ReviewItem> {
    const full = newItem(item, retentionMs, now);
    await this.write(full);
    this.items.set(full.id, full);
    return full;
  }

  async get(id: string, now = Date.now()): Promise<ReviewItem | undefined> {
    const item = this.items.get(id);
    return item && item.expiresAt > now ? item : undefined;
  }

  /** Oldest first; `status` narrows it. */
  async list(status?: ReviewStatus, now = Date.now()): Promise<ReviewItem[]> {
    return [...this.items.values()].filter((i) => i.expiresAt > now && (!status || i.status === status)).sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  /** Records a reviewer's decision on a pending item. */
  async decide(id: string, action: ReviewAction, decision: Omit<ReviewDecision, 'at' | 'used'>, now = Date.now()): Promise<ReviewItem> {
    const item = await this.get(id, now);
    if (!item) throw new ReviewError(404, `No review '${id}' (it may have expired).`);
    if (item.status !== 'pending') throw new ReviewError(409, `Review '${id}' was already decided: ${item.status}.`);
    const next = decided(item, action, decision, now);
    await this.write(next);
    this.items.set(id, next);
    return next;
  }

  /** Marks an approved moderation review as spent: its input went through once. */
  async use(id: string): Promise<boolean> {
    const item = this.items.get(id);
    if (!item?.decision || item.status !== 'approved' || item.decision.used) return false;
    const next = { ...item, decision: { ...item.decision, used: true } };
    // In memory first: a second call in the same tick must not pass too.
    this.items.set(id, next);
    await this.write(next);
    return true;
  }

  /** Deletes what has outlived its retention. */
  async sweep(now = Date.now()): Promise<number> {
    let removed = 0;
    for (const [id, item] of this.items) {
      if (item.expiresAt > now) continue;
      this.items.delete(id);
      if (this.dir) await rm(join(this.dir, `${id}.json`), { force: true });
      removed++;
    }
    return removed;
  }

  private async write(item: ReviewItem): Promise<void> {
    if (!this.dir) return;
    const tmp = join(this.dir, `.${item.id}.${process.pid}.tmp`);
    await writeFile(tmp, JSON.stringify(item));
    await rename(tmp, join(this.dir, `${item.id}.json`));
  }
}

export class ReviewError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}
