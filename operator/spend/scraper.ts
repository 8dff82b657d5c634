// Reads /usage from every running sidecar (pod IP and its `envelope-admin` port, from the Pod
// watch) and turns the answers into ledger reports. A pod that does not answer keeps its last
// figure in the ledger: a missed scrape delays spend, it never loses it.
import { request } from 'undici';
import type { PodReport, BudgetReport } from './ledger.ts';
import { usdToNano } from '../reconcile/money.ts';

interface UsageBody {
  state_backend?: string;
  budgets?: Record<string, { period?: string; spent_usd?: number; refused?: number }>;
}

/** The budgets of the pod's own namespace in a /usage answer; keys are `namespace/name@period`. */
export function parseUsage(body: unknown, namespace: string): { backend: string; budgets: Map<string, BudgetReport> } {
  const b = (body ?? {}) as UsageBody;
  const budgets = new Map<string, BudgetReport>();
  for (const [key, row] of Object.entries(b.budgets ?? {})) {
    const m = /^([^/]+)\/([^@]+)@(.+)$/.exec(key);
    if (!m || m[1] !== namespace || typeof row?.spent_usd !== 'number' || !Number.isFinite(row.spent_usd) || row.spent_usd < 0) continue;
    budgets.set(m[2] as string, { period: row.period ?? (m[3] as string), spentNano: usdToNano(row.spent_usd), refused: (row.refused ?? 0) > 0 });
  }
  return { backend: b.state_backend ?? 'local', budgets };
}

export async function scrapePod(target: { uid: string; pod: string; namespace: string; adminURL: string }, timeoutMs: number): Promise<PodReport> {
  const res = await request(`${target.adminURL}/usage`, { method: 'GET', signal: AbortSignal.timeout(timeoutMs), headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
  if (res.statusCode !== 200) {
    await res.body.dump();
    throw new Error(`/usage answered ${res.statusCode}`);
  }
  const parsed = parseUsage(await res.body.json(), target.namespace);
  return { uid: target.uid, pod: target.pod, namespace: target.namespace, ...parsed };
}
