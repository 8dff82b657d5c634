// The simulated organization's bill: what every call the simulator served cost, per project, UTC
// day and line item, served as OpenAI's `GET /v1/organization/costs`. Calls are priced with the
// sidecar's own price table, so an envelope that counts right sees no drift; tests add amounts
// through the control API (or `bill()`) to make some.
import { costNano, priceFor } from '../sidecar/policy/prices.ts';
import { normaliseUsage } from '../sidecar/upstream/usage.ts';
import { ApiError, invalidParam, invalidType, missingParam } from './errors.ts';
import { json, type Reply } from './reply.ts';

const DAY_S = 86_400;
/** Used when neither the OpenAI-Project header nor the key map names a project. */
export const DEFAULT_PROJECT = 'proj_default';

export interface CostEntry {
  /** UTC midnight, unix seconds. */
  day: number;
  projectId: string;
  lineItem: string;
  nano: number;
}

/** Nano-USD by `day|project|line item`. */
export type CostBook = Map<string, CostEntry>;

export function addCost(book: CostBook, e: CostEntry): void {
  if (!Number.isSafeInteger(e.nano) || e.nano === 0) return;
  const k = `${e.day}|${e.projectId}|${e.lineItem}`;
  const cur = book.get(k);
  if (cur) cur.nano += e.nano;
  else book.set(k, { ...e });
}

export const dayOf = (unixSeconds: number): number => Math.floor(unixSeconds / DAY_S) * DAY_S;

/** The project a call is billed to: the OpenAI-Project header, else the key's project, else the default. */
export function projectOf(headers: Record<string, string>, key: string | undefined, projects: Record<string, string>): string {
  const header = headers['openai-project']?.trim();
  if (header) return header;
  return (key !== undefined ? projects[key] : undefined) ?? DEFAULT_PROJECT;
}

/**
 * Bills a served call from the usage it reported: uncached input, cached input and output as
 * three line items (`<model>, input` and so on), which add up to exactly what the sidecar charges.
 */
export function billUsage(book: CostBook, at: number, projectId: string, model: string, rawUsage: unknown): void {
  const usage = normaliseUsage(rawUsage);
  const price = priceFor(model);
  if (!usage || !price) return;
  const day = dayOf(at);
  const total = costNano(usage, price);
  const cached = Math.min(usage.cached, usage.input);
  const input = costNano({ input: usage.input - cached, cached: 0, output: 0, reasoning: 0 }, price);
  const cachedCost = costNano({ input: cached, cached, output: 0, reasoning: 0 }, price);
  addCost(book, { day, projectId, lineItem: `${model}, input`, nano: input });
  addCost(book, { day, projectId, lineItem: `${model}, cached input`, nano: cachedCost });
  addCost(book, { day, projectId, lineItem: `${model}, output`, nano: Math.max(0, total - input - cachedCost) });
}

/** What the control API and `bill()` accept: an amount added to a project's bill on a day. */
export interface ExtraCost {
  projectId: string;
  amountUSD: number;
  /** `YYYY-MM-DD` (UTC); default today. */
  date?: string;
  lineItem?: string;
}

export function checkExtraCost(v: unknown, now: number): CostEntry {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('a cost must be a JSON object {projectId, amountUSD, date?, lineItem?}');
  const o = v as Record<string, unknown>;
  if (typeof o.projectId !== 'string' || o.projectId === '') throw new Error('cost.projectId must be a non-empty string');
  if (typeof o.amountUSD !== 'number' || !Number.isFinite(o.amountUSD)) throw new Error('cost.amountUSD must be a finite number (negative for a credit)');
  let day = dayOf(now / 1000);
  if (o.date !== undefined) {
    const ms = typeof o.date === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(o.date) ? Date.parse(`${o.date}T00:00:00Z`) : NaN;
    if (!Number.isFinite(ms)) throw new Error(`cost.date must be a UTC date YYYY-MM-DD, got ${JSON.stringify(o.date)}`);
    day = ms / 1000;
  }
  if (o.lineItem !== undefined && (typeof o.lineItem !== 'string' || o.lineItem === '')) throw new Error('cost.lineItem must be a non-empty string');
  return { day, projectId: o.projectId, lineItem: (o.lineItem as string | undefined) ?? 'adjustment', nano: Math.round(o.amountUSD * 1e9) };
}

const GROUPS = ['project_id', 'line_item'] as const;
type Group = (typeof GROUPS)[number];

/** Array parameters arrive as `name=a&name=b`, `name[]=a` or `name=a,b`. */
function listParam(search: URLSearchParams, name: string): string[] {
  return [...search.getAll(name), ...search.getAll(`${name}[]`)].flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean);
}

function intParam(search: URLSearchParams, name: string): number | undefined {
  const raw = search.get(name);
  if (raw === null) return undefined;
  if (!/^-?\d+$/.test(raw)) throw invalidType(name, 'an integer', raw);
  return Number(raw);
}

// The cursor names the first day of the next page; opaque to callers, as OpenAI's is.
const encodePage = (day: number) => `page_${Buffer.from(`d:${day}`).toString('base64url')}`;
function decodePage(page: string): number {
  const m = /^page_([A-Za-z0-9_-]+)$/.exec(page);
  const inner = m ? Buffer.from(m[1] as string, 'base64url').toString('utf8') : '';
  const d = /^d:(\d+)$/.exec(inner);
  if (!d) throw invalidParam('page', 'not a cursor this endpoint returned.');
  return Number(d[1]);
}

/** `GET /v1/organization/costs`: daily buckets from start_time's UTC day up to end_time (default now). */
export function listCosts(book: CostBook, search: URLSearchParams, now: number): Reply {
  const start = intParam(search, 'start_time');
  if (start === undefined) throw missingParam('start_time');
  if (start < 0) throw invalidParam('start_time', 'must be a unix time in seconds.');
  const end = intParam(search, 'end_time') ?? Math.ceil(now / 1000);
  if (end <= start) throw invalidParam('end_time', 'must be after start_time.');
  const width = search.get('bucket_width') ?? '1d';
  if (width !== '1d') throw invalidParam('bucket_width', `only '1d' is supported, got '${width}'.`);
  const limit = intParam(search, 'limit') ?? 7;
  if (limit < 1 || limit > 180) throw invalidParam('limit', 'must be between 1 and 180.');
  const groupBy = listParam(search, 'group_by');
  for (const g of groupBy) if (!(GROUPS as readonly string[]).includes(g)) throw invalidParam('group_by', `unknown field '${g}'; use project_id, line_item or both.`);
  const projects = new Set(listParam(search, 'project_ids'));
  const page = search.get('page');

  const first = page ? decodePage(page) : dayOf(start);
  const data: unknown[] = [];
  let day = first;
  for (; day < end && data.length < limit; day += DAY_S) {
    const sums = new Map<string, { projectId: string | null; lineItem: string | null; nano: number }>();
    for (const e of book.values()) {
      if (e.day !== day || (projects.size > 0 && !projects.has(e.projectId))) continue;
      const projectId = groupBy.includes('project_id' as Group) ? e.projectId : null;
      const lineItem = groupBy.includes('line_item' as Group) ? e.lineItem : null;
      const k = `${projectId}|${lineItem}`;
      const s = sums.get(k) ?? { projectId, lineItem, nano: 0 };
      s.nano += e.nano;
      sums.set(k, s);
    }
    const results = [...sums.values()]
      .sort((a, b) => `${a.projectId}|${a.lineItem}`.localeCompare(`${b.projectId}|${b.lineItem}`))
      .map((s) => ({ object: 'organization.costs.result', amount: { value: s.nano / 1e9, currency: 'usd' }, line_item: s.lineItem, project_id: s.projectId }));
    data.push({ object: 'bucket', start_time: day, end_time: day + DAY_S, results });
  }
  const hasMore = day < end;
  return json({ object: 'page', data, has_more: hasMore, next_page: hasMore ? encodePage(day) : null });
}

/** Admin endpoints take admin keys only; any other key lacks the scope, as on the real API. */
export function checkAdminKey(key: string, adminKeys: string[] | undefined): ApiError | undefined {
  const admin = adminKeys ? adminKeys.includes(key) : key.startsWith('sk-admin-');
  if (admin) return undefined;
  return new ApiError(
    401,
    "You have insufficient permissions for this operation. Missing scopes: api.usage.read. Check that you have the correct role in your organization (Owner), and if you're using a restricted API key, that it has the necessary scopes.",
  );
}
