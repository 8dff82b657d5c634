import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { formatProblem, parseManifests } from './manifests.ts';
import { configFromSources, renderConfig } from './render.ts';

const route = (spec: unknown, name = 'r') => stringify({ apiVersion: 'ai-envelope.dev/v1alpha1', kind: 'AIRoute', metadata: { name, namespace: 'shop' }, spec });
const check = (text: string) => parseManifests([{ file: 'x.yaml', text }]).problems.map(formatProblem);

describe('manifest validation', () => {
  it('accepts a minimal route and applies defaults', () => {
    const m = parseManifests([{ file: 'x.yaml', text: route({}) }]);
    expect(m.problems).toEqual([]);
    const spec = m.routes[0]!.spec;
    expect(spec.upstream.baseURL).toBe('https://api.openai.com/v1');
    expect(spec.retry).toEqual({ maxAttempts: 3, baseDelayMs: 250, maxDelayMs: 8000 });
    expect(spec.timeouts).toEqual({ requestSeconds: 60, streamIdleSeconds: 30 });
    expect(spec.endpoints).toEqual(['responses', 'chat.completions', 'embeddings', 'moderations']);
  });
  it('names the file, document, object and field of each problem', () => {
    expect(check(`${route({}, 'ok')}---\n${route({ model: { allowed: ['a'], colour: 'red' } })}`)).toEqual(['x.yaml: document 2 (AIRoute shop/r): spec.model.colour: unknown field "spec.model.colour"']);
    expect(check(route({ retry: { maxAttempts: 0 } }))).toEqual(['x.yaml: document 1 (AIRoute shop/r): spec.retry.maxAttempts: Invalid value: 0: spec.retry.maxAttempts in body should be greater than or equal to 1']);
  });
  it('checks cross-field rules', () => {
    const problems = check(route({ model: { allowed: ['a'], default: 'b', fallbacks: ['a', 'c'], aliases: { fast: 'd' } }, limits: { route: { requestsPerMinute: 5 }, perUser: { requestsPerMinute: 6 } } }));
    // Where the API server reports them: at the node whose CEL rule failed.
    expect(problems).toEqual([
      'x.yaml: document 1 (AIRoute shop/r): spec.model: Invalid value: "object": model.default must be one of model.allowed',
      'x.yaml: document 1 (AIRoute shop/r): spec.model: Invalid value: "object": every model.fallbacks entry must be one of model.allowed',
      'x.yaml: document 1 (AIRoute shop/r): spec.model: Invalid value: "object": every model.aliases target must be one of model.allowed',
      'x.yaml: document 1 (AIRoute shop/r): spec.limits: Invalid value: "object": limits.perUser.requestsPerMinute must not be above limits.route.requestsPerMinute',
    ]);
    const budget = stringify({ apiVersion: 'ai-envelope.dev/v1alpha1', kind: 'AIBudget', metadata: { name: 'b' }, spec: { limitUSD: 10, onExhausted: 'degrade' } });
    expect(check(budget)).toEqual(['x.yaml: document 1 (AIBudget default/b): spec: Invalid value: "object": degradeTo is required when onExhausted is \'degrade\'']);
  });
  it('reports missing fields, duplicates, unknown kinds and YAML errors, and skips other groups', () => {
    const m = parseManifests([
      { file: 'a.yaml', text: `${route({})}---\n${route({})}---\napiVersion: v1\nkind: Secret\nmetadata: {name: s}\n---\napiVersion: ai-envelope.dev/v1alpha1\nkind: AIRoutes\nmetadata: {name: x}\n` },
      { file: 'b.yaml', text: 'apiVersion: ai-envelope.dev/v1alpha1\nkind: AIBudget\nmetadata: {name: b}\nspec: {}\n' },
      { file: 'c.yaml', text: 'foo: [\n' },
    ]);
    expect(m.skipped).toBe(1);
    const lines = m.problems.map(formatProblem);
    expect(lines[0]).toMatch(/^a\.yaml: document 2 \(AIRoute shop\/r\): metadata\.name: AIRoute shop\/r is defined twice/);
    expect(lines[1]).toBe("a.yaml: document 4 (AIRoutes default/x): kind: unknown kind 'AIRoutes' in ai-envelope.dev (expected AIRoute, AIBudget or SidecarConfig)");
    expect(lines[2]).toBe('b.yaml: document 1 (AIBudget default/b): spec.limitUSD: Required value');
    expect(lines[3]).toMatch(/^c\.yaml: document 1: YAML syntax: .*line 2/);
  });
  it('accepts a rendered config and refuses one whose content no longer matches its version', () => {
    const m = parseManifests([{ file: 'x.yaml', text: route({ model: { allowed: ['a'] } }) }]);
    const rendered = renderConfig(m.routes, []);
    expect(parseManifests([{ file: 'c.yaml', text: stringify(rendered) }]).configs).toHaveLength(1);
    rendered.routes[0]!.model.allowed.push('b');
    expect(check(stringify(rendered))[0]).toMatch(/version: does not match the content/);
  });
  it("refuses a budget whose degradeTo a covered route does not allow", () => {
    const budget = stringify({ apiVersion: 'ai-envelope.dev/v1alpha1', kind: 'AIBudget', metadata: { name: 'b', namespace: 'shop' }, spec: { limitUSD: 1, onExhausted: 'degrade', degradeTo: 'gpt-4o' } });
    const result = configFromSources('x.yaml', [{ file: 'x.yaml', text: `${route({ model: { allowed: ['gpt-4.1-mini'] } })}---\n${budget}` }]);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(formatProblem(result.problems[0]!)).toBe("x.yaml (AIBudget shop/b): spec.degradeTo: 'gpt-4o' is not among the allowed models of route shop/r, which this budget covers");
  });
  it('refuses a route whose output schema does not compile', () => {
    const result = configFromSources('x.yaml', [{ file: 'x.yaml', text: route({ output: { jsonSchema: { type: 'object', properties: { a: { type: 'nonsense' } } } } }) }]);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(formatProblem(result.problems[0]!)).toMatch(/^x\.yaml \(AIRoute shop\/r\): spec\.output\.jsonSchema: is not a usable JSON Schema: /);
  });
});
