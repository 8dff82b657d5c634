// The scenario file: defaults, and problems located by file and field path.
import { describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from '../test/support/sidecar-process.ts';
import { loadScenario, parseScenario, ScenarioError } from './scenario.ts';

function problems(value: unknown): string[] {
  try {
    parseScenario(value, 's.yaml');
  } catch (e) {
    if (e instanceof ScenarioError) return e.problems;
    throw e;
  }
  return [];
}

describe('scenario', () => {
  it('fills in defaults', () => {
    const s = parseScenario({ routes: [{ name: 'r', model: 'gpt-4.1-mini', requestsPerDay: 10, tokens: { typical: { input: 100 } } }] }, 's.yaml');
    expect(s.days).toBe(30);
    expect(s.routes[0]).toMatchObject({ cachedShare: 0, retryRate: 0, batchShare: 0, streamingShare: 0, tokens: { typical: { input: 100, output: 0 } } });
  });

  it('names the file and field of every problem', () => {
    expect(
      problems({
        days: 0,
        colour: 'red',
        routes: [
          { name: 'a', cachedShare: 1.5, retryRate: -1, tokens: { typical: { input: 'many' } } },
          { model: 'gpt-4.1', batchShare: 0.5, batchableShare: 0.2, tokens: { typical: { input: 100, output: 10 }, worst: { input: 50, output: 10 } } },
        ],
      }),
    ).toEqual([
      's.yaml: days: must be at least 1',
      's.yaml: routes[0].tokens.typical.input: must be a number of tokens',
      's.yaml: routes[0].cachedShare: must be from 0 to 1',
      's.yaml: routes[0].retryRate: must not be negative',
      's.yaml: routes[1].name: required field is missing',
      's.yaml: colour: unknown field',
    ]);
    // Cross-field rules run once the fields themselves are right.
    expect(problems({ routes: [{ name: 'b', batchShare: 0.5, batchableShare: 0.2, tokens: { typical: { input: 100, output: 10 }, worst: { input: 50, output: 10 } } }] })).toEqual([
      's.yaml: routes[0].batchableShare: must not be below batchShare (the share already in batch is batchable)',
      's.yaml: routes[0].tokens.worst: must not be below tokens.typical',
    ]);
    expect(problems({ routes: [{ name: 'a', namespace: 'shop' }, { name: 'a', namespace: 'shop' }] })).toEqual(['s.yaml: routes[1].name: route shop/a is listed twice']);
  });

  it('reads YAML and JSON files, and reports syntax errors with line and column', async () => {
    const dir = tempDir('cost');
    const json = join(dir, 's.json');
    writeFileSync(json, JSON.stringify({ days: 31, routes: [{ name: 'r' }] }));
    expect((await loadScenario(json)).days).toBe(31);
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'routes:\n  - name: r\n   model: x\n');
    await expect(loadScenario(bad)).rejects.toThrow(new RegExp(`^${bad}: line 3, column 1: `));
    const list = join(dir, 'list.yaml');
    writeFileSync(list, '- a\n- b\n');
    await expect(loadScenario(list)).rejects.toThrow(`${list}: a scenario must be a mapping with routes`);
    await expect(loadScenario(join(dir, 'missing.yaml'))).rejects.toThrow(/ENOENT/);
  });

  it('accepts the example', async () => {
    const s = await loadScenario(fileURLToPath(new URL('../examples/cost/shop.yaml', import.meta.url)));
    expect(s.routes.map((r) => r.name)).toEqual(['support-triage', 'search-embeddings']);
  });
});
