// `validate` refuses every manifest of the invalid corpus with exactly the API server's lines, and
// accepts the valid one;
// test/kube/crds.test.ts checks the same corpus against a real API server.
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { invalidCases, validCases } from '../test/support/crd-corpus.ts';
import { parseManifests } from './manifests.ts';
import { BUDGET_RULES, ROUTE_RULES } from './schema.ts';

const cases = invalidCases();

describe('validate on the invalid corpus', () => {
  it.each(cases.map((c) => [c.name, c] as const))('%s', (_, c) => {
    const m = parseManifests([{ file: 'case.yaml', text: stringify(c.manifest) }]);
    expect(m.problems.map((p) => `${p.path}: ${p.message}`).sort()).toEqual([...c.errors].sort());
  });

  it.each(validCases().map((c) => [c.name, c] as const))('accepts at the edge of a rule: %s', (_, c) => {
    expect(parseManifests([{ file: 'case.yaml', text: stringify(c.manifest) }]).problems).toEqual([]);
  });

  it('has a case for every cross-field rule', () => {
    const lines = cases.flatMap((c) => c.errors);
    for (const rule of [...ROUTE_RULES, ...BUDGET_RULES]) {
      expect(lines.some((l) => l.endsWith(`Invalid value: "object": ${rule.message}`)), rule.message).toBe(true);
    }
  });
});
