// The generated CRDs on a real API server: established, refusing the invalid corpus with exactly
// the lines `validate` prints, accepting the examples, defaulting as zod does, and printing the
// columns a platform team reads in `kubectl get`.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { CATEGORY, crdFiles, KINDS } from '../../crds/generate.ts';
import { parseManifests, readSources } from '../../crds/manifests.ts';
import { renderConfig } from '../../crds/render.ts';
import { AIBudget, AIRoute, API_VERSION, BUDGET_RULES, GROUP, ROUTE_RULES, VERSION } from '../../crds/schema.ts';
import { invalidCases, validCases } from '../support/crd-corpus.ts';
import { describeWithKube, startControlPlane, type ControlPlane } from '../support/kube.ts';

const CRD_DIR = new URL('../../crds/', import.meta.url);
const plural = (kind: string) => KINDS.find((k) => k.kind === kind)!.plural;
const collection = (kind: string, ns: string) => `/apis/${GROUP}/${VERSION}/namespaces/${ns}/${plural(kind)}`;

interface Status {
  code?: number;
  message?: string;
  details?: { causes?: Array<{ field?: string; message: string }> };
}

const RULE_MESSAGES = [...ROUTE_RULES, ...BUDGET_RULES].map((r) => r.message);

/**
 * A cause as `field: message`. The one difference allowed: for a failed CEL rule this 1.24 server
 * prints the whole object where 1.25 and later print its type, `"object"`, as `validate` does.
 */
function causeLine(c: { field?: string; message: string }): string {
  let message = c.message;
  if (message.startsWith('Invalid value: map[string]interface {}{')) {
    const rule = RULE_MESSAGES.find((m) => message.endsWith(`}: ${m}`));
    if (rule) message = `Invalid value: "object": ${rule}`;
  }
  return `${c.field ?? ''}: ${message}`;
}

describeWithKube('CRDs on a real API server', () => {
  let cp: ControlPlane;

  beforeAll(async () => {
    // Strict field validation is alpha in 1.24 (beta, and kubectl's default, from 1.25).
    cp = await startControlPlane({ apiserverArgs: ['--feature-gates=ServerSideFieldValidation=true'] });
    for (const f of crdFiles()) {
      // Installed from the committed files, which a test elsewhere holds equal to the generator.
      const body = parse(readFileSync(new URL(f.name, CRD_DIR), 'utf8'));
      const r = await cp.request('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', { body });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
    }
    const deadline = Date.now() + 20_000;
    for (const k of KINDS) {
      for (;;) {
        const r = await cp.request('GET', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${k.plural}.${GROUP}`);
        const conditions = (r.body as { status?: { conditions?: Array<{ type: string; status: string }> } }).status?.conditions ?? [];
        if (conditions.some((c) => c.type === 'Established' && c.status === 'True')) break;
        if (Date.now() > deadline) throw new Error(`CRD ${k.plural} not established: ${JSON.stringify(conditions)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    // Discovery can lag the Established condition by a moment.
    while ((await cp.request('GET', collection('AIRoute', 'default'))).status !== 200) await new Promise((r) => setTimeout(r, 100));
    expect((await cp.request('POST', '/api/v1/namespaces', { body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop' } } })).status).toBe(201);
  }, 90_000);

  afterAll(async () => {
    await cp?.stop();
  });

  it('serves both kinds with their short names and category', async () => {
    const r = await cp.request('GET', `/apis/${GROUP}/${VERSION}`);
    const resources = (r.body as { resources: Array<{ name: string; kind: string; shortNames?: string[]; categories?: string[] }> }).resources;
    for (const k of KINDS) {
      const res = resources.find((x) => x.name === k.plural);
      expect(res, k.plural).toMatchObject({ kind: k.kind, shortNames: k.shortNames, categories: [CATEGORY] });
      expect(resources.some((x) => x.name === `${k.plural}/status`)).toBe(true);
    }
  });

  it.each(invalidCases().map((c) => [c.name, c] as const))('refuses, as validate does: %s', async (_, c) => {
    const r = await cp.request('POST', `${collection(c.manifest.kind, c.manifest.metadata.namespace)}?dryRun=All`, { body: c.manifest });
    expect(r.status, JSON.stringify(r.body)).toBe(422);
    const server = ((r.body as Status).details?.causes ?? []).map(causeLine).sort();
    expect(server).toEqual([...c.errors].sort());
    const local = parseManifests([{ file: 'case.yaml', text: stringify(c.manifest) }]).problems.map((p) => `${p.path}: ${p.message}`);
    expect(local.sort()).toEqual(server);
  });

  it.each(validCases().map((c) => [c.name, c] as const))('accepts, as validate does: %s', async (_, c) => {
    expect(parseManifests([{ file: 'case.yaml', text: stringify(c.manifest) }]).problems).toEqual([]);
    const r = await cp.request('POST', `${collection(c.manifest.kind, c.manifest.metadata.namespace)}?dryRun=All`, { body: c.manifest });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
  });

  it('accepts every example that validate accepts', async () => {
    const examples = fileURLToPath(new URL('../../examples/', import.meta.url));
    const sources = [...(await readSources(examples)), ...(await readSources(`${examples}openai`))];
    const m = parseManifests(sources);
    expect(m.problems).toEqual([]);
    let created = 0;
    for (const { text } of sources) {
      for (const doc of text.split(/^---$/m).map((d) => parse(d) as Record<string, unknown> | null)) {
        if (!doc || doc.apiVersion !== API_VERSION) continue;
        const meta = doc.metadata as { namespace?: string };
        const r = await cp.request('POST', collection(String(doc.kind), meta.namespace ?? 'default'), { body: doc });
        expect(r.status, JSON.stringify(r.body)).toBe(201);
        created++;
      }
    }
    expect(created).toBe(m.routes.length + m.budgets.length);
    expect(created).toBeGreaterThan(2);
  });

  it('applies the same defaults as validate and render', async () => {
    const route = { apiVersion: API_VERSION, kind: 'AIRoute', metadata: { name: 'minimal', namespace: 'default' }, spec: { model: { allowed: ['gpt-4.1-mini'] } } };
    const created = await cp.request('POST', collection('AIRoute', 'default'), { body: route });
    expect(created.status).toBe(201);
    const serverSpec = (created.body as { spec: unknown }).spec;
    const parsed = AIRoute.parse(route);
    expect(serverSpec).toEqual(parsed.spec);
    const { name: _n, namespace: _ns, labels: _l, ...rendered } = renderConfig([parsed], []).routes[0]!;
    expect(serverSpec).toEqual(rendered);

    const budget = { apiVersion: API_VERSION, kind: 'AIBudget', metadata: { name: 'minimal', namespace: 'default' }, spec: { limitUSD: 5 } };
    const b = await cp.request('POST', collection('AIBudget', 'default'), { body: budget });
    expect(b.status).toBe(201);
    expect((b.body as { spec: unknown }).spec).toEqual(AIBudget.parse(budget).spec);
  });

  it('prunes unknown fields, and strict field validation reports them as validate does', async () => {
    const route = { apiVersion: API_VERSION, kind: 'AIRoute', metadata: { name: 'colourful', namespace: 'default' }, spec: { model: { colour: 'red' } } };
    const local = parseManifests([{ file: 'x.yaml', text: stringify(route) }]).problems.map((p) => `${p.path}: ${p.message}`);
    expect(local).toEqual(['spec.model.colour: unknown field "spec.model.colour"']);
    // What kubectl 1.25+ asks for by default: the same words in the refusal.
    const strict = await cp.request('POST', `${collection('AIRoute', 'default')}?dryRun=All&fieldValidation=Strict`, { body: route });
    expect(strict.status).toBe(400);
    expect((strict.body as Status).message).toContain('unknown field "spec.model.colour"');
    // A client that does not ask: the field is dropped, never stored.
    const lax = await cp.request('POST', collection('AIRoute', 'default'), { body: route });
    expect(lax.status).toBe(201);
    expect((lax.body as { spec: { model: Record<string, unknown> } }).spec.model).not.toHaveProperty('colour');
  });

  it('prints the columns a platform team reads, from spec and status', async () => {
    const ns = 'default';
    const route = {
      apiVersion: API_VERSION,
      kind: 'AIRoute',
      metadata: { name: 'columns', namespace: ns },
      spec: { model: { default: 'gpt-4.1-mini' }, limits: { concurrency: 8, route: { requestsPerMinute: 600 }, perUser: { requestsPerMinute: 20 } } },
    };
    expect((await cp.request('POST', collection('AIRoute', ns), { body: route })).status).toBe(201);
    const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    const routeStatus = { status: { observedGeneration: 1, configMap: 'ai-envelope-columns', sidecars: 3, conditions: [{ type: 'Ready', status: 'True', reason: 'Rendered', message: 'in ConfigMap ai-envelope-columns', lastTransitionTime: now, observedGeneration: 1 }] } };
    const merge = { 'content-type': 'application/merge-patch+json' };
    const patched = await cp.request('PATCH', `${collection('AIRoute', ns)}/columns/status`, { body: routeStatus, headers: merge });
    expect(patched.status, JSON.stringify(patched.body)).toBe(200);

    const budget = { apiVersion: API_VERSION, kind: 'AIBudget', metadata: { name: 'columns', namespace: ns }, spec: { limitUSD: 500, period: 'monthly' } };
    expect((await cp.request('POST', collection('AIBudget', ns), { body: budget })).status).toBe(201);
    const budgetStatus = { status: { spentUSD: '123.45', remainingUSD: '376.55', periodStart: '2026-11-01T00:00:00Z', conditions: [{ type: 'Exhausted', status: 'False', reason: 'WithinLimit', message: '', lastTransitionTime: now }] } };
    expect((await cp.request('PATCH', `${collection('AIBudget', ns)}/columns/status`, { body: budgetStatus, headers: merge })).status).toBe(200);

    const table = async (kind: string) => {
      const r = await cp.request('GET', `${collection(kind, ns)}/columns`, { headers: { accept: 'application/json;as=Table;v=v1;g=meta.k8s.io' } });
      expect(r.status).toBe(200);
      const t = r.body as { kind: string; columnDefinitions: Array<{ name: string }>; rows: Array<{ cells: unknown[] }> };
      expect(t.kind).toBe('Table');
      const names = t.columnDefinitions.map((c) => c.name);
      return Object.fromEntries(names.map((n, i) => [n, t.rows[0]!.cells[i]]));
    };
    expect(await table('AIRoute')).toMatchObject({ Name: 'columns', Ready: 'True', 'Default-Model': 'gpt-4.1-mini', RPM: 600, 'Per-User-RPM': 20, Concurrency: 8, Sidecars: 3, ConfigMap: 'ai-envelope-columns' });
    expect(await table('AIBudget')).toMatchObject({ Name: 'columns', Period: 'monthly', Spent: '123.45', Limit: 500, Remaining: '376.55', Exhausted: 'False', 'On-Exhausted': 'block' });
  });

  it('keeps status apart from spec and checks it against its schema', async () => {
    const ns = 'default';
    const route = { apiVersion: API_VERSION, kind: 'AIRoute', metadata: { name: 'status-only', namespace: ns }, spec: {}, status: { sidecars: 5 } };
    const created = await cp.request('POST', collection('AIRoute', ns), { body: route });
    expect(created.status).toBe(201);
    // Status is the operator's, written through the subresource only.
    expect((created.body as { status?: unknown }).status).toBeUndefined();
    const bad = await cp.request('PATCH', `${collection('AIRoute', ns)}/status-only/status`, { body: { status: { sidecars: -1 } }, headers: { 'content-type': 'application/merge-patch+json' } });
    expect(bad.status).toBe(422);
    expect((bad.body as Status).details?.causes?.map((c) => c.field)).toEqual(['status.sidecars']);
  });
});
