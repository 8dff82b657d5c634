import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { configMapName, reconcileNamespace, type BudgetSpend, type NamespaceInput } from './desired.ts';
import type { KubeObject } from '../kube/client.ts';
import type { PodFact } from './pods.ts';

const NOW = Date.UTC(2026, 10, 25, 12, 0, 0);

let uid = 0;
const route = (name: string, spec: Record<string, unknown>, extra: Partial<KubeObject['metadata']> = {}, status?: unknown): KubeObject => ({
  apiVersion: 'ai-envelope.dev/v1alpha1',
  kind: 'AIRoute',
  metadata: { name, namespace: 'shop', uid: `uid-${name}-${uid++}`, generation: 1, labels: {}, ...extra },
  spec: { upstream: { secretRef: { name: 'openai' } }, ...spec },
  ...(status ? { status } : {}),
});
const budget = (name: string, spec: Record<string, unknown>, status?: unknown): KubeObject => ({
  apiVersion: 'ai-envelope.dev/v1alpha1',
  kind: 'AIBudget',
  metadata: { name, namespace: 'shop', uid: `uid-${name}`, generation: 2 },
  spec,
  ...(status ? { status } : {}),
});
const pod = (name: string, labels: Record<string, string>, running = true): PodFact => ({ name, uid: `pod-${name}`, labels, adminURL: running ? 'http://10.0.0.1:4142' : undefined });
const input = (over: Partial<NamespaceInput>): NamespaceInput => ({ namespace: 'shop', routes: [], budgets: [], secrets: new Set(['openai']), pods: [], spend: new Map(), now: NOW, ...over });

const app = (a: string) => ({ podSelector: { matchLabels: { app: a } } });
const statusOf = (out: ReturnType<typeof reconcileNamespace>, kind: string, name: string) => out.statuses.find((s) => s.kind === kind && s.name === name)?.status as Record<string, any>;
const ready = (s: Record<string, any>) => s.conditions.find((c: { type: string }) => c.type === 'Ready');

describe('reconcileNamespace: ConfigMaps', () => {
  const cases: Array<{ name: string; routes: KubeObject[]; expect: Array<{ routes: string[] }> }> = [
    { name: 'no routes, no ConfigMap', routes: [], expect: [] },
    { name: 'one route', routes: [route('a', app('web'))], expect: [{ routes: ['a'] }] },
    { name: 'same selector shares one', routes: [route('b', app('web')), route('a', app('web'))], expect: [{ routes: ['a', 'b'] }] },
    { name: 'different selectors get one each', routes: [route('a', app('web')), route('b', app('api'))], expect: [{ routes: ['b'] }, { routes: ['a'] }] },
    { name: 'no selector: all pods, its own group', routes: [route('a', {}), route('b', app('web'))], expect: [{ routes: ['a'] }, { routes: ['b'] }] },
    { name: 'a route being deleted is left out', routes: [route('a', app('web'), { deletionTimestamp: '2026-11-25T00:00:00Z' }), route('b', app('web'))], expect: [{ routes: ['b'] }] },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const out = reconcileNamespace(input({ routes: c.routes }));
      expect(out.configMaps.map((m) => ({ routes: m.routes }))).toEqual(c.expect);
    });
  }

  it('is deterministic: same content and version whatever the input order', () => {
    const r = [route('a', { ...app('web'), model: { aliases: { z: 'm1', a: 'm2' } } }), route('b', app('web'))];
    const one = reconcileNamespace(input({ routes: r }));
    const two = reconcileNamespace(input({ routes: [...r].reverse() }));
    expect(two.configMaps).toEqual(one.configMaps);
    expect(one.configMaps[0]?.annotations['ai-envelope.dev/config-version']).toMatch(/^[0-9a-f]{16}$/);
  });

  it('holds a rendered config the sidecar accepts, with owners, labels and the budgets that cover the group', () => {
    const r = route('a', app('web'), { labels: { team: 'x' } });
    const out = reconcileNamespace(input({ routes: [r, route('b', app('api'))], budgets: [budget('team-x', { limitUSD: 10, routeSelector: { matchLabels: { team: 'x' } } })] }));
    const cm = out.configMaps.find((m) => m.routes.includes('a'));
    const config = parse(cm?.data['config.json'] as string);
    expect(config).toMatchObject({ kind: 'SidecarConfig', version: cm?.version, routes: [{ name: 'a', namespace: 'shop' }], budgets: [{ name: 'team-x', routes: ['a'] }] });
    expect(cm?.ownerReferences.map((o) => `${o.kind}/${o.name}`)).toEqual(['AIRoute/a', 'AIBudget/team-x']);
    expect(cm?.labels).toEqual({ 'app.kubernetes.io/managed-by': 'ai-envelope', 'ai-envelope.dev/role': 'sidecar-config' });
    // The other group's ConfigMap carries no budget it does not need.
    expect(out.configMaps.find((m) => m.routes.includes('b'))?.budgets).toEqual([]);
  });

  it('pushes the current period’s spend into the config, and changes the version but not the spec version', () => {
    const b = budget('monthly', { limitUSD: 1 });
    const base = reconcileNamespace(input({ routes: [route('a', app('web'))], budgets: [b] }));
    const spend = new Map<string, BudgetSpend>([['monthly', { period: '2026-11', spentNano: 1_000_000_000, sidecarSpend: [], refused: false }]]);
    const withSpend = reconcileNamespace(input({ routes: [route('a', app('web'))], budgets: [b], spend }));
    const cm = withSpend.configMaps[0];
    expect(parse(cm?.data['config.json'] as string).budgets[0].reported).toEqual({ period: '2026-11', spentUSD: 1, exhausted: true });
    expect(cm?.version).not.toBe(base.configMaps[0]?.version);
    expect(cm?.specVersion).toBe(base.configMaps[0]?.specVersion);
    // Spend of a period that has ended is not pushed.
    const old = new Map<string, BudgetSpend>([['monthly', { period: '2026-10', spentNano: 5, sidecarSpend: [], refused: false }]]);
    expect(reconcileNamespace(input({ routes: [route('a', app('web'))], budgets: [b], spend: old })).configMaps[0]?.version).toBe(base.configMaps[0]?.version);
  });
});

describe('reconcileNamespace: status', () => {
  const cases: Array<{ name: string; routes: KubeObject[]; secrets?: string[]; want: Record<string, { status: string; reason: string; configMap?: boolean }> }> = [
    { name: 'served route is Ready', routes: [route('a', app('web'))], want: { a: { status: 'True', reason: 'Configured', configMap: true } } },
    { name: 'missing Secret', routes: [route('a', app('web'))], secrets: [], want: { a: { status: 'False', reason: 'SecretNotFound', configMap: false } } },
    {
      name: 'missing user-hash Secret',
      routes: [route('a', { ...app('web'), input: { userHashSecretRef: { name: 'hmac' } } })],
      want: { a: { status: 'False', reason: 'SecretNotFound', configMap: false } },
    },
    {
      name: 'missing reviewers\' token Secret',
      routes: [route('a', { ...app('web'), output: { jsonSchema: { type: 'object' }, onInvalid: 'review' }, review: { tokenSecretRef: { name: 'reviewers', key: 'token' } } })],
      want: { a: { status: 'False', reason: 'SecretNotFound', configMap: false } },
    },
    { name: 'route without a Secret uses the sidecar env key', routes: [route('a', { upstream: {} })], secrets: [], want: { a: { status: 'True', reason: 'Configured', configMap: true } } },
    { name: 'spec the schema refuses', routes: [route('a', { model: { allowed: ['x'], default: 'y' } })], want: { a: { status: 'False', reason: 'InvalidSpec', configMap: false } } },
    { name: 'unusable JSON Schema', routes: [route('a', { output: { jsonSchema: { type: 'nope' } } })], want: { a: { status: 'False', reason: 'InvalidSpec', configMap: false } } },
    {
      name: 'one bad route does not stop its neighbours',
      routes: [route('bad', { ...app('web'), upstream: { secretRef: { name: 'missing' } } }), route('good', app('web'))],
      want: { bad: { status: 'False', reason: 'SecretNotFound', configMap: false }, good: { status: 'True', reason: 'Configured', configMap: true } },
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const out = reconcileNamespace(input({ routes: c.routes, ...(c.secrets ? { secrets: new Set(c.secrets) } : {}) }));
      for (const [name, w] of Object.entries(c.want)) {
        const s = statusOf(out, 'AIRoute', name);
        expect(ready(s)).toMatchObject({ status: w.status, reason: w.reason, observedGeneration: 1 });
        expect(s.observedGeneration).toBe(1);
        expect(s.configMap !== undefined).toBe(w.configMap);
      }
    });
  }

  it('counts running sidecar pods that the route’s selector matches', () => {
    const out = reconcileNamespace(input({ routes: [route('a', app('web')), route('b', {})], pods: [pod('w1', { app: 'web' }), pod('w2', { app: 'web' }, false), pod('x', { app: 'api' })] }));
    expect(statusOf(out, 'AIRoute', 'a').sidecars).toBe(1);
    expect(statusOf(out, 'AIRoute', 'b').sidecars).toBe(2);
  });

  it('keeps lastTransitionTime while the condition holds, moves it when it flips', () => {
    const first = reconcileNamespace(input({ routes: [route('a', app('web'))] }));
    const prev = statusOf(first, 'AIRoute', 'a');
    const later = reconcileNamespace(input({ routes: [route('a', app('web'), {}, prev)], now: NOW + 60_000 }));
    expect(ready(statusOf(later, 'AIRoute', 'a')).lastTransitionTime).toBe(ready(prev).lastTransitionTime);
    const flipped = reconcileNamespace(input({ routes: [route('a', app('web'), {}, prev)], secrets: new Set(), now: NOW + 60_000 }));
    expect(ready(statusOf(flipped, 'AIRoute', 'a')).lastTransitionTime).toBe('2026-11-25T12:01:00Z');
  });

  const budgetCases: Array<{ name: string; spend?: BudgetSpend; limit: number; want: Record<string, unknown>; exhausted: string }> = [
    { name: 'nothing spent', limit: 500, want: { spentUSD: '0.00', remainingUSD: '500.00' }, exhausted: 'WithinLimit' },
    { name: 'part spent', limit: 500, spend: { period: '2026-11', spentNano: 123_450_000_000, sidecarSpend: [], refused: false }, want: { spentUSD: '123.45', remainingUSD: '376.55' }, exhausted: 'WithinLimit' },
    { name: 'limit reached', limit: 1, spend: { period: '2026-11', spentNano: 1_200_000_000, sidecarSpend: [], refused: false }, want: { spentUSD: '1.20', remainingUSD: '0.00' }, exhausted: 'LimitReached' },
    { name: 'next call no longer fits', limit: 1, spend: { period: '2026-11', spentNano: 999_990_000, sidecarSpend: [], refused: true }, want: { spentUSD: '0.99999', remainingUSD: '0.00001' }, exhausted: 'CallsRefused' },
    { name: 'spend of last period does not count', limit: 1, spend: { period: '2026-10', spentNano: 2_000_000_000, sidecarSpend: [], refused: true }, want: { spentUSD: '0.00', remainingUSD: '1.00' }, exhausted: 'WithinLimit' },
  ];
  for (const c of budgetCases) {
    it(`budget: ${c.name}`, () => {
      const out = reconcileNamespace(input({ routes: [route('a', {})], budgets: [budget('monthly', { limitUSD: c.limit })], ...(c.spend ? { spend: new Map([['monthly', c.spend]]) } : {}) }));
      const s = statusOf(out, 'AIBudget', 'monthly');
      expect(s).toMatchObject({ ...c.want, periodStart: '2026-11-01T00:00:00Z', observedGeneration: 2 });
      expect(s.conditions.find((x: { type: string }) => x.type === 'Exhausted').reason).toBe(c.exhausted);
    });
  }

  it('budget: degradeTo a model a covered route does not allow is reported, not hidden', () => {
    const out = reconcileNamespace(input({ routes: [route('a', { model: { allowed: ['gpt-4.1-mini'] } })], budgets: [budget('d', { limitUSD: 1, onExhausted: 'degrade', degradeTo: 'gpt-4.1-nano' })] }));
    expect(ready(statusOf(out, 'AIBudget', 'd'))).toMatchObject({ status: 'False', reason: 'InvalidSpec', message: expect.stringContaining('gpt-4.1-nano') });
    expect(out.configMaps[0]?.budgets).toEqual(['d']);
  });

  it('budget: invalid spec', () => {
    const out = reconcileNamespace(input({ budgets: [budget('x', { limitUSD: -1 })] }));
    expect(ready(statusOf(out, 'AIBudget', 'x'))).toMatchObject({ status: 'False', reason: 'InvalidSpec' });
  });
});

describe('configMapName', () => {
  it.each([
    [undefined, /^ai-envelope-all-[0-9a-f]{8}$/],
    [{ matchLabels: { app: 'support' } }, /^ai-envelope-support-[0-9a-f]{8}$/],
    [{ matchLabels: { tier: 'Web_Front', app: 'shop' } }, /^ai-envelope-shop-web-front-[0-9a-f]{8}$/],
    [{ matchExpressions: [{ key: 'app', operator: 'Exists' as const }] }, /^ai-envelope-pods-[0-9a-f]{8}$/],
  ])('%j → %s', (selector, pattern) => {
    const name = configMapName(selector);
    expect(name).toMatch(pattern);
    expect(name.length).toBeLessThanOrEqual(63);
  });
  it('differs for different selectors with the same values', () => {
    expect(configMapName({ matchLabels: { app: 'x' } })).not.toBe(configMapName({ matchLabels: { name: 'x' } }));
  });
});
