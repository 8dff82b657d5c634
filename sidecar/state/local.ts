// The state of one sidecar process: windows in memory, budgets in memory and, with a stateDir,
// in <stateDir>/state.json, at most a second after every change (invariant 5). Every operation runs to completion
// without awaiting anything, so concurrent calls can never interleave inside a decision.
import { mkdir } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { BudgetBook, parseImage, type SpendBatch } from './budget-book.ts';
import { StateFile } from './state-file.ts';
import { WindowBook } from './windows.ts';
import type { AdmitResult, BudgetLevel, BudgetSpec, BudgetTicket, NanoUSD, ReserveOptions, ReserveResult, StateStore, WindowSpec, WindowTicket } from './types.ts';

export interface LocalStoreOptions {
  /** Folder for state.json. Without it nothing is persisted. */
  stateDir?: string;
  /** State file problems (unreadable, corrupt, failed writes): the store carries on regardless. */
  onError?: (err: Error) => void;
  /**
   * Keep a journal of every change to spent, to be delivered elsewhere (ResilientStore hands the
   * spend of a Redis outage to Redis with it). Persisted with the budgets.
   */
  journal?: boolean;
}

/** Tickets of this store carry this prefix, so a store that routes between backends knows whose they are. */
export const LOCAL_TICKET_PREFIX = 'l-';

const warn = (err: Error) => process.emitWarning(err);

export class LocalStore implements StateStore {
  readonly kind = 'local' as const;
  private readonly windows = new WindowBook();
  private readonly book: BudgetBook;
  private readonly file: StateFile | undefined;
  private savedVersion = 0;

  /** Starts empty; with a stateDir it writes there. Use `LocalStore.open` to resume from the file. */
  constructor(opts: LocalStoreOptions = {}) {
    this.book = new BudgetBook({ journal: opts.journal ?? false });
    this.file = opts.stateDir ? new StateFile(opts.stateDir, opts.onError ?? warn) : undefined;
  }

  /**
   * Creates the folder if needed and loads state.json from it when there is one. `now` (default
   * Date.now()) decides which loaded budgets' periods have ended.
   */
  static async open(opts: LocalStoreOptions & { now?: number } = {}): Promise<LocalStore> {
    const store = new LocalStore(opts);
    if (opts.stateDir && store.file) {
      await mkdir(opts.stateDir, { recursive: true });
      const image = await store.file.load(parseImage);
      if (image) {
        store.book.load(image, opts.now ?? Date.now());
        store.changed();
      }
    }
    return store;
  }

  /** State files written so far. */
  get persistWrites(): number {
    return this.file?.writes ?? 0;
  }

  private changed(): void {
    if (!this.file || this.book.version === this.savedVersion) return;
    this.savedVersion = this.book.version;
    this.file.schedule(() => JSON.stringify(this.book.toImage()));
  }

  async admit(windows: WindowSpec[], now: number): Promise<AdmitResult> {
    return this.windows.admit(windows, now);
  }

  async adjust(ticket: WindowTicket, key: string, delta: number, now: number): Promise<void> {
    this.windows.adjust(ticket, key, delta, now);
  }

  async reserve(budgets: BudgetSpec[], amount: NanoUSD, holdMs: number, now: number, opts?: ReserveOptions): Promise<ReserveResult> {
    const result = this.book.reserve(budgets, amount, holdMs, now, LOCAL_TICKET_PREFIX + randomUUID(), opts?.durable === true);
    this.changed();
    return result;
  }

  async settle(ticket: BudgetTicket, actual: NanoUSD, now: number): Promise<Map<string, BudgetLevel>> {
    const levels = this.book.settle(ticket, actual, now);
    this.changed();
    return levels;
  }

  async levels(keys: string[], now: number): Promise<Map<string, BudgetLevel>> {
    const levels = this.book.levels(keys, now);
    this.changed();
    return levels;
  }

  async snapshot(now: number): Promise<Map<string, BudgetLevel>> {
    const levels = this.book.snapshot(now);
    this.changed();
    return levels;
  }

  /** Spend of all replicas as the operator reported it: a floor per budget counter (see BudgetBook.setFloors). */
  setFloors(floors: Array<{ key: string; spent: NanoUSD; expiresAt: number }>, now: number): void {
    this.book.setFloors(floors, now);
  }

  /** Raises a budget's spent to a level known elsewhere (outside the journal). */
  raiseSpent(key: string, spent: NanoUSD, expiresAt: number, now: number): void {
    this.book.raiseSpent(key, spent, expiresAt, now);
    this.changed();
  }

  /** Adds spend that no reservation of this store covered; `journal: false` keeps it out of the journal. */
  addSpent(key: string, amount: NanoUSD, expiresAt: number, now: number, journal: boolean): void {
    this.book.addSpent(key, amount, expiresAt, now, journal);
    this.changed();
  }

  /** The journalled spend not yet confirmed as delivered (see BudgetBook.journalBatch). */
  journalBatch(): SpendBatch | null {
    const batch = this.book.journalBatch(randomUUID);
    this.changed();
    return batch;
  }

  confirmJournal(id: string): void {
    this.book.confirmJournal(id);
    this.changed();
  }

  get journaling(): boolean {
    return this.book.journaling;
  }

  get journalSize(): number {
    return this.book.journalSize;
  }

  /** Waits until every change so far is on disk. */
  async flush(): Promise<void> {
    await this.file?.flush();
  }

  async close(): Promise<void> {
    await this.flush();
  }
}
