// The contract between the policy layer (limits, budgets) and where their counters live: in the
// sidecar (persisted to a state file) or in Redis, shared by every replica. Every operation that
// decides admission is atomic across all the keys it names, in both implementations.

/** Money as integer nano-dollars: exact sums in shared counters, and 2^53 nano-USD is $9M. */
export type NanoUSD = number;

export const NANO_PER_USD = 1_000_000_000;

/** One rolling window of a rate or token limit. */
export interface WindowSpec {
  /** e.g. `rl:shop/main:rpm`, `rl:shop/main:u:<user-digest>:tpd`. */
  key: string;
  /** 60_000 for per-minute limits, 86_400_000 for per-day. */
  windowMs: number;
  /** Counting granularity: 1_000 for per-minute, 60_000 for per-day. An entry counts until its bucket has wholly left the window. */
  bucketMs: number;
  limit: number;
  /** 1 for a request, the estimated tokens for a token window. */
  cost: number;
}

/** After a decision: what x-ratelimit-* headers report for one window. */
export interface WindowState {
  key: string;
  limit: number;
  /** What is left after this request (0 when refused). */
  remaining: number;
  /** ms until the window has room for this cost again (refused) or until its oldest counted bucket leaves (admitted). */
  resetMs: number;
}

export interface WindowTicket {
  entries: Array<{ key: string; bucket: number; cost: number; windowMs: number; bucketMs: number }>;
}

export type AdmitResult =
  | { admitted: true; ticket: WindowTicket; windows: WindowState[] }
  | { admitted: false; retryAfterMs: number; key: string; windows: WindowState[] };

/** One budget counter for one period, e.g. `b:shop/monthly:2026-11` or `b:shop/monthly:2026-11:u:<digest>`. */
export interface BudgetSpec {
  key: string;
  limit: NanoUSD;
  /** true: refuse the reservation if it would pass the limit (onExhausted: block). */
  enforce: boolean;
  /** End of the period (epoch ms): the counter may be dropped after it. */
  expiresAt: number;
}

export interface BudgetTicket {
  id: string;
  keys: string[];
  amount: NanoUSD;
}

export type ReserveResult =
  | { ok: true; ticket: BudgetTicket }
  | { ok: false; key: string; spent: NanoUSD; reserved: NanoUSD; limit: NanoUSD };

export interface ReserveOptions {
  /** The holder outlives the process (a Batch job): a local store keeps the reservation across a restart. Redis always does. */
  durable?: boolean;
}

export interface BudgetLevel {
  spent: NanoUSD;
  /** Reserved by calls in flight. */
  reserved: NanoUSD;
  /** Reservations refused in this period for lack of budget (stores that count them: the local one). */
  refused?: number;
}

export interface StateStore {
  readonly kind: 'local' | 'redis';
  /** Counts one request against every window, or none of them if any is full. */
  admit(windows: WindowSpec[], now: number): Promise<AdmitResult>;
  /** Corrects a token window once the real usage is known (delta may be negative). */
  adjust(ticket: WindowTicket, key: string, delta: number, now: number): Promise<void>;
  /**
   * Reserves `amount` on every budget, or on none if an enforced one would pass its limit
   * (spent + reserved + amount > limit). A reservation not settled within `holdMs` is counted
   * as spent (the call may have cost that much; a crashed replica never frees budget it held).
   */
  reserve(budgets: BudgetSpec[], amount: NanoUSD, holdMs: number, now: number, opts?: ReserveOptions): Promise<ReserveResult>;
  /** Replaces a reservation by what the call really cost (0 to release it); returns the new levels. */
  settle(ticket: BudgetTicket, actual: NanoUSD, now: number): Promise<Map<string, BudgetLevel>>;
  levels(keys: string[], now: number): Promise<Map<string, BudgetLevel>>;
  /** Every budget counter this store knows, for /usage: its own counting, without operator floors. */
  snapshot(now: number): Promise<Map<string, BudgetLevel>>;
  /**
   * Spend the operator added up across replicas, per budget counter of the current period: what
   * this store enforces is at least that (plus its own spend since). Replaces earlier floors.
   * Optional: a store shared by every replica (Redis) already counts all of it.
   */
  setFloors?(floors: Array<{ key: string; spent: NanoUSD; expiresAt: number }>, now: number): void;
  /** Writes pending changes now (a local store with a state dir); a durable reservation is flushed before its holder is told. */
  flush?(): Promise<void>;
  close(): Promise<void>;
}
