// Budget counters of one process: spent, reservations of calls in flight, and (for a store that
// stands in for Redis during an outage) a journal of every change to spent, so that exactly that
// spend can be added to Redis later. Pure bookkeeping: persistence is the caller's.
import type { BudgetLevel, BudgetSpec, BudgetTicket, NanoUSD, ReserveResult } from './types.ts';

/**
 * How long a reservation that expired into spent is remembered, so that a settle arriving later
 * corrects spent by (actual - amount) instead of being ignored. Past it, a late settle changes
 * nothing and the budget keeps the full reservation: an overcount, never an overspend.
 */
export const SWEPT_GRACE_MS = 86_400_000;

export interface Reservation {
  amount: NanoUSD;
  expiresAt: number;
  /** Held by something that outlives this process (a Batch job): a restart keeps it reserved until its hold ends. */
  durable?: true;
}

export interface Budget {
  spent: NanoUSD;
  reserved: NanoUSD;
  expiresAt: number;
  reservations: Map<string, Reservation>;
  /** Reservations refused for lack of budget: the operator reads it as "exhausted for the calls this route makes". */
  refused: number;
  /** Reservations that expired into spent: id → when to forget them. */
  swept: Map<string, number>;
  /**
   * No reservation expires and no swept id is forgotten before this: every call looks at its
   * budgets, and walking every reservation in flight on each look was a tenth of the sidecar's
   * allocations under load.
   */
  sweepAt: number;
}

export interface SpendEntry {
  key: string;
  delta: NanoUSD;
  /** End of the budget's period, so whoever applies the entry knows how long the counter lives. */
  expiresAt: number;
}

/** A journal taken for delivery: stays pending, with the same id, until confirmed, so a retry is recognisable. */
export interface SpendBatch {
  id: string;
  entries: SpendEntry[];
}

/** What a state file holds. Reservations are kept so a restart can count them as spent. */
export interface BookImage {
  version: 1;
  budgets: Record<string, { spent: NanoUSD; expiresAt: number; reservations: Record<string, Reservation> }>;
  journal: SpendEntry[];
  pending: SpendBatch | null;
}

/**
 * Spend of every replica in one period as the operator last added it up (`spent`). `base` is this
 * book's own spent when the floor arrived: what this process spends afterwards is not in the
 * operator's sum yet, so it counts on top of the floor.
 */
export interface Floor {
  spent: NanoUSD;
  base: NanoUSD;
  expiresAt: number;
}

export function checkNano(what: string, n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`${what} must be a non-negative integer of nano-USD, got ${n}`);
}

/** How often (in the caller's time) budgets of periods that have ended are looked for and dropped. */
const DROP_EVERY_MS = 60_000;

export class BudgetBook {
  private readonly budgets = new Map<string, Budget>();
  private floors = new Map<string, Floor>();
  private journal: Map<string, SpendEntry> | undefined;
  private pending: SpendBatch | null = null;
  private lastDrop = -Infinity;
  /** Bumped on every change, so the owner knows when there is something to persist. */
  version = 0;

  constructor(opts: { journal?: boolean } = {}) {
    if (opts.journal) this.journal = new Map();
  }

  private budget(key: string, expiresAt: number): Budget {
    let b = this.budgets.get(key);
    if (!b) {
      b = { spent: 0, reserved: 0, refused: 0, expiresAt, reservations: new Map(), swept: new Map(), sweepAt: Infinity };
      this.budgets.set(key, b);
    } else if (expiresAt > b.expiresAt) {
      b.expiresAt = expiresAt;
    }
    return b;
  }

  private spend(key: string, b: Budget, delta: NanoUSD, journal = true): void {
    delta = Math.max(0, b.spent + delta) - b.spent;
    if (delta === 0) return;
    b.spent += delta;
    this.version++;
    if (!journal || !this.journal) return;
    const e = this.journal.get(key);
    if (e) {
      e.delta += delta;
      e.expiresAt = Math.max(e.expiresAt, b.expiresAt);
    } else {
      this.journal.set(key, { key, delta, expiresAt: b.expiresAt });
    }
  }

  /** Moves reservations past their hold into spent: the call may have cost that much. */
  private sweep(key: string, b: Budget, now: number): void {
    if (now < b.sweepAt) return;
    let next = Infinity;
    for (const [id, r] of b.reservations) {
      if (r.expiresAt > now) {
        next = Math.min(next, r.expiresAt);
        continue;
      }
      b.reservations.delete(id);
      b.reserved -= r.amount;
      b.swept.set(id, now + SWEPT_GRACE_MS);
      next = Math.min(next, now + SWEPT_GRACE_MS);
      this.spend(key, b, r.amount);
      this.version++;
    }
    for (const [id, forgetAt] of b.swept) {
      if (forgetAt <= now) b.swept.delete(id);
      else next = Math.min(next, forgetAt);
    }
    b.sweepAt = next;
  }

  private dropEnded(now: number, force = false): void {
    if (!force && now - this.lastDrop < DROP_EVERY_MS) return;
    this.lastDrop = now;
    for (const [key, b] of this.budgets) {
      if (b.expiresAt <= now) {
        this.budgets.delete(key);
        this.version++;
      }
    }
  }

  private live(key: string, now: number): Budget | undefined {
    const b = this.budgets.get(key);
    if (!b) return undefined;
    if (b.expiresAt <= now) {
      this.budgets.delete(key);
      this.version++;
      return undefined;
    }
    this.sweep(key, b, now);
    return b;
  }

  /** Spent as enforced: this book's own, or the operator's floor plus what was spent since it came. */
  private effective(key: string, own: NanoUSD, now: number): NanoUSD {
    const f = this.floors.get(key);
    if (!f || f.expiresAt <= now) return own;
    return Math.max(own, f.spent + Math.max(0, own - f.base));
  }

  /**
   * Replaces the floors. A floor whose amount is unchanged keeps its base, so a config reloaded
   * for another reason does not forget the spend made since the floor first arrived.
   */
  setFloors(floors: Array<{ key: string; spent: NanoUSD; expiresAt: number }>, now: number): void {
    const next = new Map<string, Floor>();
    for (const f of floors) {
      checkNano('floor', f.spent);
      if (f.expiresAt <= now) continue;
      const old = this.floors.get(f.key);
      const own = this.budgets.get(f.key)?.spent ?? 0;
      next.set(f.key, old && old.spent === f.spent ? old : { spent: f.spent, base: own, expiresAt: f.expiresAt });
    }
    this.floors = next;
  }

  reserve(specs: BudgetSpec[], amount: NanoUSD, holdMs: number, now: number, id: string, durable = false): ReserveResult {
    checkNano('amount', amount);
    this.dropEnded(now);
    const budgets = specs.map((s) => {
      this.live(s.key, now);
      return this.budget(s.key, s.expiresAt);
    });
    for (const [i, s] of specs.entries()) {
      const b = budgets[i] as Budget;
      const spent = this.effective(s.key, b.spent, now);
      if (s.enforce && spent + b.reserved + amount > s.limit) {
        b.refused++;
        return { ok: false, key: s.key, spent, reserved: b.reserved, limit: s.limit };
      }
    }
    for (const b of budgets) {
      b.reservations.set(id, { amount, expiresAt: now + holdMs, ...(durable ? { durable: true as const } : {}) });
      b.sweepAt = Math.min(b.sweepAt, now + holdMs);
      b.reserved += amount;
    }
    this.version++;
    return { ok: true, ticket: { id, keys: specs.map((s) => s.key), amount } };
  }

  settle(ticket: BudgetTicket, actual: NanoUSD, now: number): Map<string, BudgetLevel> {
    checkNano('actual', actual);
    for (const key of ticket.keys) {
      const b = this.live(key, now);
      if (!b) continue;
      const r = b.reservations.get(ticket.id);
      if (r) {
        b.reservations.delete(ticket.id);
        b.reserved -= r.amount;
        this.version++;
        this.spend(key, b, actual);
      } else if (b.swept.delete(ticket.id)) {
        // The reservation already went into spent when its hold ran out: only the difference is new.
        this.spend(key, b, actual - ticket.amount);
        this.version++;
      }
      // Otherwise it was settled already, or forgotten past the grace: counting it again would double it.
    }
    return this.levels(ticket.keys, now);
  }

  /** Levels as enforced (floors included). */
  levels(keys: string[], now: number): Map<string, BudgetLevel> {
    const out = new Map<string, BudgetLevel>();
    for (const key of keys) {
      const b = this.live(key, now);
      out.set(key, { spent: this.effective(key, b?.spent ?? 0, now), reserved: b?.reserved ?? 0 });
    }
    return out;
  }

  /**
   * This book's own spend, floors left out: what /usage reports and the operator adds up across
   * replicas (a floor already is such a sum; reporting it back would count it again).
   */
  snapshot(now: number): Map<string, BudgetLevel> {
    this.dropEnded(now, true);
    const out = new Map<string, BudgetLevel>();
    for (const key of [...this.budgets.keys()]) {
      const b = this.live(key, now);
      out.set(key, { spent: b?.spent ?? 0, reserved: b?.reserved ?? 0, ...(b?.refused ? { refused: b.refused } : {}) });
    }
    return out;
  }

  /** Raises spent to at least `spent` (a level learnt elsewhere, e.g. from Redis), outside the journal. */
  raiseSpent(key: string, spent: NanoUSD, expiresAt: number, now: number): void {
    checkNano('spent', spent);
    if (expiresAt <= now) return;
    const b = this.budget(key, expiresAt);
    if (spent > b.spent) this.spend(key, b, spent - b.spent, false);
  }

  /** Adds spend that did not go through a reservation of this book. */
  addSpent(key: string, amount: NanoUSD, expiresAt: number, now: number, journal: boolean): void {
    checkNano('amount', amount);
    if (expiresAt <= now) return;
    this.spend(key, this.budget(key, expiresAt), amount, journal);
  }

  /**
   * The spend not yet delivered: the pending batch if one was taken and not confirmed (same id,
   * so the receiver can tell a retry), else a new batch from the journal. Null when there is none.
   */
  journalBatch(newId: () => string): SpendBatch | null {
    if (this.pending) return this.pending;
    if (!this.journal) return null;
    const entries = [...this.journal.values()].filter((e) => e.delta !== 0);
    this.journal.clear();
    if (entries.length === 0) return null;
    this.pending = { id: newId(), entries };
    this.version++;
    return this.pending;
  }

  confirmJournal(id: string): void {
    if (this.pending?.id !== id) return;
    this.pending = null;
    this.version++;
  }

  get journaling(): boolean {
    return this.journal !== undefined;
  }

  get journalSize(): number {
    return (this.journal?.size ?? 0) + (this.pending?.entries.length ?? 0);
  }

  toImage(): BookImage {
    const budgets: BookImage['budgets'] = {};
    for (const [key, b] of this.budgets) {
      budgets[key] = { spent: b.spent, expiresAt: b.expiresAt, reservations: Object.fromEntries(b.reservations) };
    }
    return { version: 1, budgets, journal: this.journal ? [...this.journal.values()] : [], pending: this.pending };
  }

  /**
   * Loads an image written by a previous process. Its outstanding reservations become spent: that
   * process may have died mid-call, and the call may have cost all it reserved.
   */
  load(image: BookImage, now: number): void {
    if (this.journal) {
      for (const e of image.journal) this.journal.set(e.key, { ...e });
      this.pending = image.pending;
    }
    for (const [key, saved] of Object.entries(image.budgets)) {
      if (saved.expiresAt <= now) continue;
      const b = this.budget(key, saved.expiresAt);
      b.spent = saved.spent;
      for (const [id, r] of Object.entries(saved.reservations)) {
        // A Batch job still runs after a restart and will settle its own reservation.
        if (r.durable && r.expiresAt > now) {
          b.reservations.set(id, r);
          b.reserved += r.amount;
          b.sweepAt = Math.min(b.sweepAt, r.expiresAt);
        } else this.spend(key, b, r.amount);
      }
    }
    this.version++;
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isNano = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isTime = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isEntry = (v: unknown): v is SpendEntry => isObject(v) && typeof v.key === 'string' && typeof v.delta === 'number' && Number.isSafeInteger(v.delta) && isTime(v.expiresAt);

/** Checks a parsed state file; throws with what is wrong, so the caller can set the file aside. */
export function parseImage(raw: unknown): BookImage {
  if (!isObject(raw) || raw.version !== 1 || !isObject(raw.budgets)) throw new Error('not an ai-envelope state file (version 1)');
  for (const [key, b] of Object.entries(raw.budgets)) {
    if (!isObject(b) || !isNano(b.spent) || !isTime(b.expiresAt) || !isObject(b.reservations)) throw new Error(`budget ${key}: bad counter`);
    for (const [id, r] of Object.entries(b.reservations)) {
      if (!isObject(r) || !isNano(r.amount) || !isTime(r.expiresAt)) throw new Error(`budget ${key}: bad reservation ${id}`);
    }
  }
  const journal = raw.journal ?? [];
  if (!Array.isArray(journal) || !journal.every(isEntry)) throw new Error('bad journal');
  const pending = raw.pending ?? null;
  if (pending !== null && !(isObject(pending) && typeof pending.id === 'string' && Array.isArray(pending.entries) && pending.entries.every(isEntry))) {
    throw new Error('bad pending batch');
  }
  return raw as unknown as BookImage;
}
