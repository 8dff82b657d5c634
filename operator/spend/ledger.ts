// Adds up budget spend across sidecar pods, period by period. Each pod reports what its own
// sidecar counted (/usage); the ledger keeps the last figure per pod and, in `carried`, the
// spend of pods that went away or restarted without their state, so the total never goes back
// down within a period. The per-pod figures are persisted in the budget's status
// (`sidecarSpend`), so an operator that restarts, or a new leader, adds only what is new.
// Pure: the scraper feeds it reports and the reconcile reads totals.
import { periodOf, type Period } from '../../sidecar/policy/periods.ts';
import type { BudgetSpend } from '../reconcile/desired.ts';
import { parseUSD, usdToNano } from '../reconcile/money.ts';

/** What one pod's /usage said about one budget. */
export interface BudgetReport {
  period: string;
  spentNano: number;
  refused: boolean;
}

export interface PodReport {
  uid: string;
  pod: string;
  namespace: string;
  /** `redis`: every replica reports the same shared counter, so it is taken once, not summed. */
  backend: string;
  /** By budget name (namespace is the pod's). */
  budgets: Map<string, BudgetReport>;
}

/** A budget as the ledger needs it: its period kind and the status last written. */
export interface BudgetRef {
  namespace: string;
  name: string;
  period: Period;
  status?: { periodStart?: string; spentUSD?: string; sidecarSpend?: Array<{ uid: string; pod: string; spentUSD: number }> };
}

interface Entry {
  period: string;
  carried: number;
  pods: Map<string, { pod: string; spent: number }>;
  refused: boolean;
}

/** Stands for the shared Redis counter: one figure for all replicas that report from Redis. */
export const SHARED_UID = 'shared-state';

const id = (namespace: string, name: string) => `${namespace}/${name}`;

export class SpendLedger {
  private readonly entries = new Map<string, Entry>();

  private entry(b: BudgetRef, now: number): Entry {
    const span = periodOf(b.period, now);
    const key = id(b.namespace, b.name);
    let e = this.entries.get(key);
    if (e && e.period === span.key) return e;
    e = { period: span.key, carried: 0, pods: new Map(), refused: false };
    // Resume from the status when it describes this same period.
    const s = b.status;
    const total = parseUSD(s?.spentUSD);
    if (s && total !== undefined && s.periodStart && Date.parse(s.periodStart) === span.start) {
      let perPod = 0;
      for (const p of s.sidecarSpend ?? []) {
        const spent = usdToNano(p.spentUSD);
        e.pods.set(p.uid, { pod: p.pod, spent });
        perPod += spent;
      }
      e.carried = Math.max(0, total - perPod);
    }
    this.entries.set(key, e);
    return e;
  }

  /** The budget's spend this period (resumed from its status the first time it is asked for). */
  spendFor(b: BudgetRef, now: number): BudgetSpend {
    const e = this.entry(b, now);
    let total = e.carried;
    const sidecarSpend: BudgetSpend['sidecarSpend'] = [];
    for (const [uid, p] of [...e.pods].sort(([a], [b]) => a.localeCompare(b))) {
      total += p.spent;
      sidecarSpend.push({ uid, pod: p.pod, spentUSD: p.spent / 1e9 });
    }
    return { period: e.period, spentNano: total, sidecarSpend, refused: e.refused };
  }

  /**
   * One round of scraping. `livePods`: uids of every pod that still exists (running or not);
   * pods of the ledger outside it are gone and their spend is carried. Returns the ids
   * (`namespace/name`) of budgets whose total or state changed.
   */
  observe(reports: PodReport[], budgets: BudgetRef[], livePods: ReadonlySet<string>, now: number): Set<string> {
    const changed = new Set<string>();
    const byId = new Map(budgets.map((b) => [id(b.namespace, b.name), b]));
    const before = new Map<string, string>();
    for (const b of budgets) {
      const s = this.spendFor(b, now);
      before.set(id(b.namespace, b.name), `${s.spentNano}|${s.refused}|${s.sidecarSpend.length}`);
    }
    // The shared counter: the highest figure any Redis-backed replica gave this round.
    const shared = new Map<string, { spent: number; refused: boolean; period: string }>();
    for (const r of reports) {
      for (const [name, rep] of r.budgets) {
        const b = byId.get(id(r.namespace, name));
        if (!b) continue;
        const e = this.entry(b, now);
        if (rep.period !== e.period) continue;
        if (rep.refused) e.refused = true;
        if (r.backend === 'redis') {
          const k = id(r.namespace, name);
          const cur = shared.get(k);
          if (!cur || rep.spentNano > cur.spent) shared.set(k, { spent: rep.spentNano, refused: rep.refused, period: rep.period });
          continue;
        }
        this.record(e, r.uid, r.pod, rep.spentNano);
      }
    }
    for (const [k, s] of shared) {
      const e = this.entries.get(k);
      if (e && e.period === s.period) this.record(e, SHARED_UID, 'redis', s.spent);
    }
    for (const b of budgets) {
      const e = this.entry(b, now);
      for (const [uid, p] of e.pods) {
        if (uid === SHARED_UID || livePods.has(uid)) continue;
        e.carried += p.spent;
        e.pods.delete(uid);
      }
      const s = this.spendFor(b, now);
      const k = id(b.namespace, b.name);
      if (before.get(k) !== `${s.spentNano}|${s.refused}|${s.sidecarSpend.length}`) changed.add(k);
    }
    // Budgets that no longer exist are forgotten.
    for (const k of this.entries.keys()) if (!byId.has(k)) this.entries.delete(k);
    return changed;
  }

  private record(e: Entry, uid: string, pod: string, spent: number): void {
    const prev = e.pods.get(uid);
    // Lower than before: the sidecar restarted without its state and counts from zero again;
    // what it had counted is kept.
    if (prev && spent < prev.spent) e.carried += prev.spent;
    e.pods.set(uid, { pod, spent });
  }
}
