import { describe, expect, it } from 'vitest';
import { bucketIndex, bucketLeavesAt, firstCountedBucket, WindowBook } from './windows.ts';
import type { WindowSpec } from './types.ts';

const spec = (over: Partial<WindowSpec> = {}): WindowSpec => ({ key: 'rl:a:rpm', windowMs: 10_000, bucketMs: 1000, limit: 5, cost: 1, ...over });

/** A small deterministic PRNG, so a failing seed can be replayed. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('the counting rule', () => {
  it('counts a bucket until its last millisecond has left the window', () => {
    // Bucket 1 holds [1000, 2000); its last entry (1999) leaves a 10 s window at 11_999.
    expect(bucketLeavesAt(1, 10_000, 1000)).toBe(11_999);
    expect(firstCountedBucket(11_998, 10_000, 1000)).toBe(1);
    expect(firstCountedBucket(11_999, 10_000, 1000)).toBe(2);
    expect(bucketIndex(1999, 1000)).toBe(1);
  });
});

describe('WindowBook.admit', () => {
  it('admits exactly the limit, then refuses', () => {
    const book = new WindowBook();
    const remaining: number[] = [];
    for (let i = 0; i < 5; i++) {
      const r = book.admit([spec()], 1000);
      expect(r.admitted).toBe(true);
      remaining.push(r.windows[0]?.remaining ?? -1);
    }
    expect(remaining).toEqual([4, 3, 2, 1, 0]);
    const refused = book.admit([spec()], 1000);
    expect(refused).toMatchObject({ admitted: false, key: 'rl:a:rpm', windows: [{ remaining: 0 }] });
  });

  it('computes retryAfter exactly to the bucket, oldest bucket first', () => {
    const book = new WindowBook();
    for (let i = 0; i < 3; i++) book.admit([spec()], 1500); // bucket 1
    for (let i = 0; i < 2; i++) book.admit([spec()], 4200); // bucket 4
    const one = book.admit([spec()], 5000);
    // One unit of room appears when bucket 1 leaves: 11_999.
    expect(one).toMatchObject({ admitted: false, retryAfterMs: 6999 });
    const four = book.admit([spec({ cost: 4 })], 5000);
    // Four units need bucket 4 gone as well: 14_999.
    expect(four).toMatchObject({ admitted: false, retryAfterMs: 9999 });
    expect(book.admit([spec()], 11_998).admitted).toBe(false);
    const later = book.admit([spec()], 11_999);
    expect(later.admitted).toBe(true);
    // Reset reported for an admitted request: when its oldest counted bucket (4) leaves.
    expect(later.windows[0]).toEqual({ key: 'rl:a:rpm', limit: 5, remaining: 2, resetMs: bucketLeavesAt(4, 10_000, 1000) - 11_999 });
  });

  it('is all or nothing across windows', () => {
    const book = new WindowBook();
    const rpm = spec({ key: 'rl:a:rpm', limit: 2 });
    const tpm = spec({ key: 'rl:a:tpm', limit: 100, cost: 10 });
    expect(book.admit([rpm, tpm], 0).admitted).toBe(true);
    expect(book.admit([rpm, tpm], 0).admitted).toBe(true);
    const refused = book.admit([rpm, tpm], 0);
    expect(refused).toMatchObject({ admitted: false, key: 'rl:a:rpm' });
    // The token window reports its own room and was not charged for the refused call.
    expect(refused.windows[1]).toMatchObject({ key: 'rl:a:tpm', remaining: 80 });
    const alone = book.admit([tpm], 0);
    expect(alone.windows[0]?.remaining).toBe(70);
  });

  it('reports the longest wait among refused windows', () => {
    const book = new WindowBook();
    const a = spec({ key: 'a', limit: 1 });
    const b = spec({ key: 'b', limit: 1, windowMs: 20_000 });
    book.admit([a, b], 0);
    const r = book.admit([a, b], 0);
    expect(r).toMatchObject({ admitted: false, key: 'b', retryAfterMs: bucketLeavesAt(0, 20_000, 1000) });
  });

  it('refuses a cost above the limit with retryAfter = windowMs, naming that window', () => {
    const book = new WindowBook();
    const r = book.admit([spec({ key: 'rl:a:rpm', limit: 5 }), spec({ key: 'rl:a:tpm', limit: 100, cost: 101, windowMs: 60_000 })], 0);
    expect(r).toMatchObject({ admitted: false, key: 'rl:a:tpm', retryAfterMs: 60_000 });
    // Nothing was counted in the window that had room.
    expect(book.admit([spec({ limit: 5 })], 0).windows[0]?.remaining).toBe(4);
  });

  it('never writes below the newest bucket when the clock steps back', () => {
    const book = new WindowBook();
    const s = spec({ limit: 2 });
    book.admit([s], 9_500); // bucket 9
    const back = book.admit([s], 1_200); // clock went back to bucket 1
    expect(back.admitted).toBe(true);
    expect(back.admitted && back.ticket.entries[0]?.bucket).toBe(9);
    // Both count until bucket 9 leaves, not bucket 1.
    expect(book.admit([s], bucketLeavesAt(9, 10_000, 1000) - 1).admitted).toBe(false);
    expect(book.admit([s], bucketLeavesAt(9, 10_000, 1000)).admitted).toBe(true);
  });

  it('keeps what was counted when the bucket size of a key changes', () => {
    const book = new WindowBook();
    book.admit([spec({ limit: 2 })], 500);
    book.admit([spec({ limit: 2 })], 500);
    expect(book.admit([spec({ limit: 2, bucketMs: 2000 })], 600).admitted).toBe(false);
  });
});

describe('WindowBook.adjust', () => {
  it('corrects the ticket’s bucket, never below zero, and not once it has left', () => {
    const book = new WindowBook();
    const tpm = (cost: number) => spec({ key: 'tpm', limit: 100, cost });
    const r = book.admit([tpm(60)], 0); // bucket 0
    if (!r.admitted) throw new Error('refused');
    book.adjust(r.ticket, 'tpm', -50, 100);
    expect(book.admit([tpm(90)], 2000).admitted).toBe(true); // bucket 2: 10 + 90
    expect(book.admit([tpm(1)], 2000).admitted).toBe(false);
    book.adjust(r.ticket, 'tpm', -1000, 2100); // bucket 0 goes to 0, not -990
    expect(book.admit([tpm(0)], 2100).windows[0]?.remaining).toBe(10);
    const left = bucketLeavesAt(0, 10_000, 1000);
    book.adjust(r.ticket, 'tpm', 500, left); // bucket 0 has left: nothing to correct
    expect(book.admit([tpm(0)], left).windows[0]?.remaining).toBe(10);
  });
});

describe('against an exact sliding log', () => {
  it('never lets any rolling window hold more than the limit, and waits at most one bucket longer', () => {
    for (let seed = 1; seed <= 30; seed++) {
      const rand = rng(seed);
      const windowMs = [1000, 3000, 5000][Math.floor(rand() * 3)] as number;
      const bucketMs = [1, 100, 250, 1000].filter((b) => b <= windowMs)[Math.floor(rand() * 4)] ?? 100;
      const limit = 1 + Math.floor(rand() * 12);
      const book = new WindowBook();
      const log: Array<{ t: number; cost: number }> = [];
      let t = Math.floor(rand() * 10_000);
      for (let i = 0; i < 600; i++) {
        t += Math.floor(rand() * rand() * 400);
        const cost = 1 + Math.floor(rand() * 3);
        const r = book.admit([{ key: 'k', windowMs, bucketMs, limit, cost }], t);
        const inWindow = (at: number) => log.filter((e) => e.t > at - windowMs && e.t <= at).reduce((n, e) => n + e.cost, 0);
        if (r.admitted) {
          log.push({ t, cost });
          // The exact log over (t - windowMs, t], admitted ones only, never passes the limit.
          expect(inWindow(t), `seed ${seed} t ${t}`).toBeLessThanOrEqual(limit);
          continue;
        }
        if (cost > limit) continue;
        // Exact: the earliest time the log has room, dropping entries oldest first.
        let excess = inWindow(t) + cost - limit;
        let exact = t;
        for (const e of log) {
          if (excess <= 0) break;
          if (e.t <= t - windowMs) continue;
          excess -= e.cost;
          exact = e.t + windowMs;
        }
        const at = t + r.retryAfterMs;
        expect(at, `seed ${seed}: retry before the exact log allows`).toBeGreaterThanOrEqual(exact);
        expect(at - exact, `seed ${seed}: more than one bucket late`).toBeLessThanOrEqual(bucketMs - 1);
        // And exact to the bucket: room at `at`, none a millisecond earlier.
        const bucketed = (when: number) =>
          log.filter((e) => bucketIndex(e.t, bucketMs) >= firstCountedBucket(when, windowMs, bucketMs)).reduce((n, e) => n + e.cost, 0);
        expect(bucketed(at) + cost).toBeLessThanOrEqual(limit);
        if (r.retryAfterMs > 0) expect(bucketed(at - 1) + cost).toBeGreaterThan(limit);
      }
      expect(log.length).toBeGreaterThan(limit);
    }
  });
});
