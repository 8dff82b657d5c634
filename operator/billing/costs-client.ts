// Reads OpenAI's organization Costs API (GET /v1/organization/costs, admin key) into nano-USD per
// project and UTC day, following next_page. Replies are checked with zod: a shape it does not
// know is an error that says where, never a silent zero.
import { request } from 'undici';
import { z } from 'zod';
import { usdToNano } from '../reconcile/money.ts';
import { utcDate } from './drift.ts';

const Page = z.object({
  object: z.literal('page'),
  data: z.array(
    z.object({
      start_time: z.number().int(),
      end_time: z.number().int(),
      results: z.array(
        z.object({
          amount: z.object({ value: z.number(), currency: z.string() }).nullish(),
          project_id: z.string().nullish(),
        }),
      ),
    }),
  ),
  has_more: z.boolean(),
  next_page: z.string().nullish(),
});

/** Nano-USD by project, then by UTC date. */
export type Bill = Map<string, Map<string, number>>;

/** No organization spans more days than this in one read; a cursor that never ends is a bug upstream. */
const MAX_PAGES = 20;

export class CostsError extends Error {}

export interface CostsQuery {
  baseURL: string;
  adminKey: string;
  /** Unix seconds, a UTC midnight. */
  startTime: number;
  projectIds: string[];
  timeoutMs: number;
}

export async function readBill(q: CostsQuery): Promise<Bill> {
  const bill: Bill = new Map();
  let page: string | undefined;
  for (let n = 0; n < MAX_PAGES; n++) {
    const search = new URLSearchParams({ start_time: String(q.startTime), bucket_width: '1d', limit: '31' });
    search.append('group_by', 'project_id');
    for (const p of q.projectIds) search.append('project_ids', p);
    if (page) search.set('page', page);
    const url = `${q.baseURL.replace(/\/+$/, '')}/organization/costs?${search}`;
    let res;
    try {
      res = await request(url, { method: 'GET', headers: { authorization: `Bearer ${q.adminKey}`, accept: 'application/json' }, signal: AbortSignal.timeout(q.timeoutMs), headersTimeout: q.timeoutMs, bodyTimeout: q.timeoutMs });
    } catch (err) {
      throw new CostsError(`GET ${q.baseURL}/organization/costs failed: ${(err as Error).message}`);
    }
    const text = await res.body.text();
    if (res.statusCode !== 200) {
      let detail = text.slice(0, 300);
      try {
        detail = (JSON.parse(text) as { error?: { message?: string } }).error?.message ?? detail;
      } catch {
        // Not JSON: the raw start of the body says enough.
      }
      throw new CostsError(`GET ${q.baseURL}/organization/costs answered ${res.statusCode}: ${detail}`);
    }
    let parsed;
    try {
      parsed = Page.safeParse(JSON.parse(text));
    } catch {
      throw new CostsError(`GET ${q.baseURL}/organization/costs answered something that is not JSON`);
    }
    if (!parsed.success) {
      const i = parsed.error.issues[0];
      throw new CostsError(`GET ${q.baseURL}/organization/costs answered an unexpected shape at ${i?.path.join('.') || '(root)'}: ${i?.message}`);
    }
    for (const bucket of parsed.data.data) {
      const date = utcDate(bucket.start_time * 1000);
      for (const r of bucket.results) {
        if (!r.amount || !r.project_id) continue;
        if (r.amount.currency.toLowerCase() !== 'usd') throw new CostsError(`costs for ${r.project_id} on ${date} are in ${r.amount.currency}, not usd`);
        const days = bill.get(r.project_id) ?? new Map<string, number>();
        days.set(date, (days.get(date) ?? 0) + usdToNano(r.amount.value));
        bill.set(r.project_id, days);
      }
    }
    if (!parsed.data.has_more || !parsed.data.next_page) return bill;
    page = parsed.data.next_page;
  }
  throw new CostsError(`GET ${q.baseURL}/organization/costs still had more after ${MAX_PAGES} pages`);
}
