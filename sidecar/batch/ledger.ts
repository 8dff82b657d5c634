// What the sidecar knows of Batch jobs, rebuilt from the journal's events: governed input files,
// batches with the budget reservation each holds, and deferred calls (queued, or in which batch).
// Pure: events in, state out; the journal and the upstream are the service's.
import type { Endpoint } from '../../crds/schema.ts';
import type { BudgetTicket } from '../state/types.ts';

/** Deferred calls and their batches are remembered this long, for apps to fetch results. */
export const JOB_RETENTION_MS = 7 * 86_400_000;

export type LedgerEvent =
  | { t: 'file'; id: string; route: string; url: string; lines: number; reserve_nano: number; unpriced: string[]; at: number }
  | { t: 'batch'; id: string; route: string; file_id: string; url: string; reserve_nano: number; ticket?: BudgetTicket; at: number }
  | { t: 'settled'; id: string; status: string; cost_nano: number; output_file_id: string | null; error_file_id: string | null }
  | { t: 'queued'; id: string; route: string; endpoint: Endpoint; body: Record<string, unknown>; worst_nano: number; unpriced?: string; at: number }
  | { t: 'submitted'; ids: string[]; batch_id: string }
  | { t: 'refused'; ids: string[]; code: string; message: string };

export interface FileEntry {
  route: string;
  url: string;
  lines: number;
  reserveNano: number;
  unpriced: string[];
  at: number;
}

export interface BatchEntry {
  id: string;
  route: string;
  fileId: string;
  url: string;
  reserveNano: number;
  ticket?: BudgetTicket;
  at: number;
  settled?: { status: string; costNano: number; outputFileId: string | null; errorFileId: string | null };
}

export interface JobEntry {
  id: string;
  route: string;
  endpoint: Endpoint;
  at: number;
  worstNano: number;
  unpriced?: string;
  /** Kept only while queued: once in a batch, the upstream holds it. */
  body?: Record<string, unknown>;
  batchId?: string;
  failure?: { code: string; message: string };
}

export class Ledger {
  readonly files = new Map<string, FileEntry>();
  readonly batches = new Map<string, BatchEntry>();
  readonly jobs = new Map<string, JobEntry>();
  /** Queued calls by `route|endpoint`, in arrival order: kept as events arrive, so no look walks every call. */
  private readonly queued = new Map<string, Map<string, JobEntry>>();

  private dequeue(j: JobEntry): void {
    const key = `${j.route}|${j.endpoint}`;
    const q = this.queued.get(key);
    q?.delete(j.id);
    if (q?.size === 0) this.queued.delete(key);
    delete j.body;
  }

  apply(e: LedgerEvent): void {
    switch (e.t) {
      case 'file':
        this.files.set(e.id, { route: e.route, url: e.url, lines: e.lines, reserveNano: e.reserve_nano, unpriced: e.unpriced, at: e.at });
        break;
      case 'batch':
        this.batches.set(e.id, { id: e.id, route: e.route, fileId: e.file_id, url: e.url, reserveNano: e.reserve_nano, ...(e.ticket ? { ticket: e.ticket } : {}), at: e.at });
        break;
      case 'settled': {
        const b = this.batches.get(e.id);
        if (b) b.settled = { status: e.status, costNano: e.cost_nano, outputFileId: e.output_file_id, errorFileId: e.error_file_id };
        break;
      }
      case 'queued': {
        const j: JobEntry = { id: e.id, route: e.route, endpoint: e.endpoint, at: e.at, worstNano: e.worst_nano, body: e.body, ...(e.unpriced ? { unpriced: e.unpriced } : {}) };
        this.jobs.set(e.id, j);
        const key = `${j.route}|${j.endpoint}`;
        let q = this.queued.get(key);
        if (!q) this.queued.set(key, (q = new Map()));
        q.set(j.id, j);
        break;
      }
      case 'submitted':
        for (const id of e.ids) {
          const j = this.jobs.get(id);
          if (!j) continue;
          j.batchId = e.batch_id;
          this.dequeue(j);
        }
        break;
      case 'refused':
        for (const id of e.ids) {
          const j = this.jobs.get(id);
          if (!j) continue;
          j.failure = { code: e.code, message: e.message };
          this.dequeue(j);
        }
        break;
    }
  }

  /** Deferred calls waiting for a batch, oldest first, grouped by route and endpoint. */
  queues(): Map<string, JobEntry[]> {
    return new Map([...this.queued].map(([key, q]) => [key, [...q.values()]]));
  }

  queueKeys(): string[] {
    return [...this.queued.keys()];
  }

  /** One queue, oldest first, and its length without copying it. */
  queue(key: string): { size: number; take(n: number): JobEntry[] } {
    const q = this.queued.get(key);
    return {
      size: q?.size ?? 0,
      take: (n) => {
        const out: JobEntry[] = [];
        if (q) for (const j of q.values()) if (out.push(j) >= n) break;
        return out;
      },
    };
  }

  unsettled(): BatchEntry[] {
    return [...this.batches.values()].filter((b) => !b.settled);
  }

  /**
   * The events that rebuild what is still live: unused governed files, unsettled batches, and
   * deferred calls (with their batches) younger than the retention.
   */
  compact(now: number): LedgerEvent[] {
    const out: LedgerEvent[] = [];
    const keepBatch = new Set<string>();
    for (const j of this.jobs.values()) if (j.batchId && now - j.at < JOB_RETENTION_MS) keepBatch.add(j.batchId);
    const usedFiles = new Set([...this.batches.values()].map((b) => b.fileId));
    for (const [id, f] of this.files) {
      if (usedFiles.has(id) || now - f.at >= JOB_RETENTION_MS) continue;
      out.push({ t: 'file', id, route: f.route, url: f.url, lines: f.lines, reserve_nano: f.reserveNano, unpriced: f.unpriced, at: f.at });
    }
    for (const b of this.batches.values()) {
      if (b.settled && !keepBatch.has(b.id)) continue;
      out.push({ t: 'batch', id: b.id, route: b.route, file_id: b.fileId, url: b.url, reserve_nano: b.reserveNano, ...(b.ticket ? { ticket: b.ticket } : {}), at: b.at });
      if (b.settled) out.push({ t: 'settled', id: b.id, status: b.settled.status, cost_nano: b.settled.costNano, output_file_id: b.settled.outputFileId, error_file_id: b.settled.errorFileId });
    }
    for (const j of this.jobs.values()) {
      const queued = !j.batchId && !j.failure;
      if (!queued && now - j.at >= JOB_RETENTION_MS) continue;
      out.push({ t: 'queued', id: j.id, route: j.route, endpoint: j.endpoint, body: j.body ?? {}, worst_nano: j.worstNano, ...(j.unpriced ? { unpriced: j.unpriced } : {}), at: j.at });
      if (j.batchId) out.push({ t: 'submitted', ids: [j.id], batch_id: j.batchId });
      if (j.failure) out.push({ t: 'refused', ids: [j.id], code: j.failure.code, message: j.failure.message });
    }
    return out;
  }
}
