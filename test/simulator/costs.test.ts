// The organization Costs endpoint: the bill of the calls the simulator served, per project and
// UTC day, in OpenAI's page/bucket/result shape, for admin keys only; extra amounts on demand.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../../simulator/index.ts';
import { costNano, priceFor } from '../../sidecar/policy/prices.ts';
import { client, errorBody } from './helpers.ts';

const ADMIN = 'sk-admin-test-costs';
const KEY_A = 'sk-test-project-a';
const KEY_B = 'sk-test-project-b';
const DAY = 86_400;

let sim: Simulator;

interface Page {
  object: string;
  data: Array<{ object: string; start_time: number; end_time: number; results: Array<{ object: string; amount: { value: number; currency: string }; line_item: string | null; project_id: string | null }> }>;
  has_more: boolean;
  next_page: string | null;
}

async function costs(query: string, key = ADMIN): Promise<{ status: number; body: unknown; text: string }> {
  const res = await fetch(`${sim.url}/organization/costs?${query}`, { headers: { authorization: `Bearer ${key}` } });
  const text = await res.text();
  return { status: res.status, text, body: JSON.parse(text) };
}

const today = () => Math.floor(Date.now() / 1000 / DAY) * DAY;

beforeAll(async () => {
  sim = await startSimulator({ apiKeys: [KEY_A, KEY_B], adminKeys: [ADMIN], projects: { [KEY_A]: 'proj_a', [KEY_B]: 'proj_b' } });
});
afterAll(() => sim.close());

describe('GET /v1/organization/costs', () => {
  it('bills each served call to its key\'s project at the sidecar\'s prices, in OpenAI\'s shape', async () => {
    const a = await client(sim, { apiKey: KEY_A }).chat.completions.create({ model: 'gpt-4.1-mini', messages: [{ role: 'user', content: 'hello there' }] });
    const b = await client(sim, { apiKey: KEY_B }).responses.create({ model: 'gpt-4o', input: 'what is the weather', stream: true });
    let bUsage: unknown;
    for await (const e of b) if (e.type === 'response.completed') bUsage = e.response.usage;
    // The OpenAI-Project header wins over the key's project.
    await client(sim, { apiKey: KEY_A }).embeddings.create({ model: 'text-embedding-3-small', input: 'abc' }, { headers: { 'OpenAI-Project': 'proj_c' } });

    const r = await costs(`start_time=${today()}&group_by=project_id`);
    expect(r.status).toBe(200);
    const page = r.body as Page;
    expect(Object.keys(page).sort()).toEqual(['data', 'has_more', 'next_page', 'object']);
    expect(page).toMatchObject({ object: 'page', has_more: false, next_page: null });
    expect(page.data).toHaveLength(1);
    const bucket = page.data[0]!;
    expect(bucket).toMatchObject({ object: 'bucket', start_time: today(), end_time: today() + DAY });
    const byProject = Object.fromEntries(bucket.results.map((x) => [x.project_id, x]));
    expect(Object.keys(byProject).sort()).toEqual(['proj_a', 'proj_b', 'proj_c']);
    for (const x of bucket.results) {
      expect(x.object).toBe('organization.costs.result');
      expect(x.amount.currency).toBe('usd');
      expect(x.line_item).toBeNull();
    }
    const expectA = costNano({ input: a.usage!.prompt_tokens, output: a.usage!.completion_tokens, cached: 0, reasoning: 0 }, priceFor('gpt-4.1-mini')!) / 1e9;
    expect(byProject.proj_a!.amount.value).toBeCloseTo(expectA, 12);
    const u = bUsage as { input_tokens: number; output_tokens: number };
    expect(byProject.proj_b!.amount.value).toBeCloseTo(costNano({ input: u.input_tokens, output: u.output_tokens, cached: 0, reasoning: 0 }, priceFor('gpt-4o')!) / 1e9, 12);
    expect(byProject.proj_c!.amount.value).toBeGreaterThan(0);

    // By line item: the parts add up to the project's amount.
    const items = ((await costs(`start_time=${today()}&group_by[]=project_id&group_by[]=line_item&project_ids=proj_a`)).body as Page).data[0]!.results;
    expect(items.map((x) => x.line_item).sort()).toEqual(['gpt-4.1-mini, input', 'gpt-4.1-mini, output']);
    expect(items.every((x) => x.project_id === 'proj_a')).toBe(true);
    expect(items.reduce((s, x) => s + x.amount.value, 0)).toBeCloseTo(expectA, 12);

    // Without group_by: one organization-wide result.
    const all = ((await costs(`start_time=${today()}`)).body as Page).data[0]!.results;
    expect(all).toHaveLength(1);
    expect(all[0]).toMatchObject({ project_id: null, line_item: null });
    expect(all[0]!.amount.value).toBeCloseTo(bucket.results.reduce((s, x) => s + x.amount.value, 0), 12);
  });

  it('adds amounts on demand (in process and over the control API), on the day asked for', async () => {
    const yesterday = new Date((today() - DAY) * 1000).toISOString().slice(0, 10);
    sim.bill({ projectId: 'proj_x', amountUSD: 1.25, date: yesterday });
    const res = await fetch(`${sim.url.replace(/\/v1$/, '')}/_sim/costs`, { method: 'POST', body: JSON.stringify([{ projectId: 'proj_x', amountUSD: 0.5 }]) });
    expect(res.status).toBe(204);
    const bad = await fetch(`${sim.url.replace(/\/v1$/, '')}/_sim/costs`, { method: 'POST', body: JSON.stringify({ projectId: 'proj_x', amountUSD: 'lots' }) });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { message: string } }).error.message).toMatch(/amountUSD/);

    const page = (await costs(`start_time=${today() - DAY}&group_by=project_id&project_ids=proj_x`)).body as Page;
    expect(page.data.map((d) => d.start_time)).toEqual([today() - DAY, today()]);
    expect(page.data.map((d) => d.results.map((x) => x.amount.value))).toEqual([[1.25], [0.5]]);
  });

  it('pages through days with limit and the next_page cursor, empty days included', async () => {
    const start = today() - 9 * DAY;
    const seen: number[] = [];
    let query = `start_time=${start}&limit=4`;
    let pages = 0;
    for (;;) {
      const page = (await costs(query)).body as Page;
      pages++;
      seen.push(...page.data.map((d) => d.start_time));
      expect(page.data.length).toBeLessThanOrEqual(4);
      if (!page.has_more) {
        expect(page.next_page).toBeNull();
        break;
      }
      expect(page.next_page).toMatch(/^page_/);
      query = `start_time=${start}&limit=4&page=${page.next_page}`;
    }
    expect(pages).toBe(3);
    expect(seen).toEqual(Array.from({ length: 10 }, (_, i) => start + i * DAY));
  });

  it('refuses project keys and no key, and says what is wrong with a bad query', async () => {
    const denied = await costs(`start_time=${today()}`, KEY_A);
    expect(denied.status).toBe(401);
    expect(errorBody(denied.text).message).toMatch(/insufficient permissions.*api\.usage\.read/);
    const none = await fetch(`${sim.url}/organization/costs?start_time=1`);
    expect(none.status).toBe(401);
    expect(errorBody(await none.text()).code).toBe('invalid_api_key');

    const cases: Array<[string, RegExp]> = [
      ['', /start_time/],
      ['start_time=abc', /start_time/],
      [`start_time=${today()}&bucket_width=1h`, /bucket_width/],
      [`start_time=${today()}&limit=181`, /limit/],
      [`start_time=${today()}&group_by=model`, /group_by/],
      [`start_time=${today()}&page=nonsense`, /page/],
      [`start_time=${today()}&end_time=${today() - 1}`, /end_time/],
    ];
    for (const [q, message] of cases) {
      const r = await costs(q);
      expect(r.status, q).toBe(400);
      expect(errorBody(r.text).message, q).toMatch(message);
    }
  });
});
