// The committed CRDs are what the generator makes from schema.ts, `ai-envelope crds` prints the
// same, and the schemas stay within what Kubernetes accepts as structural.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { crd, crdFiles, crdsYaml, KINDS } from './generate.ts';

type Schema = Record<string, unknown>;

function walk(node: Schema, at: string, visit: (node: Schema, at: string) => void): void {
  visit(node, at);
  for (const [k, v] of Object.entries((node.properties as Record<string, Schema> | undefined) ?? {})) walk(v, `${at}.${k}`, visit);
  if (node.items) walk(node.items as Schema, `${at}[]`, visit);
  if (typeof node.additionalProperties === 'object') walk(node.additionalProperties as Schema, `${at}{}`, visit);
}

const rootSchema = (k: (typeof KINDS)[number]) =>
  (crd(k).spec as { versions: Array<{ schema: { openAPIV3Schema: Schema } }> }).versions[0]!.schema.openAPIV3Schema;

describe('generated CRDs', () => {
  it.each(crdFiles().map((f) => [f.name, f] as const))('crds/%s is up to date (regenerate: npx node crds/generate.ts)', (name, f) => {
    expect(readFileSync(new URL(name, import.meta.url), 'utf8')).toBe(f.yaml);
  });

  it('are what `ai-envelope crds` prints', () => {
    const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
    const r = spawnSync(process.execPath, [cli, 'crds'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(crdsYaml());
    const docs = parseAllDocuments(r.stdout).map((d) => d.toJS() as { kind: string; spec: { names: { kind: string } } });
    expect(docs.map((d) => `${d.kind}/${d.spec.names.kind}`)).toEqual(['CustomResourceDefinition/AIRoute', 'CustomResourceDefinition/AIBudget']);
  });

  it.each(KINDS.map((k) => [k.kind, k] as const))('%s: structural, typed everywhere, no bounds zod adds for JavaScript', (_, k) => {
    walk(rootSchema(k), '', (node, at) => {
      expect(node.type !== undefined || node['x-kubernetes-preserve-unknown-fields'] === true, `${at} has a type`).toBe(true);
      expect(node.additionalProperties, `${at}: additionalProperties false`).not.toBe(false);
      for (const key of ['anyOf', 'oneOf', 'allOf', '$ref', 'propertyNames', '$schema']) expect(node, at).not.toHaveProperty(key);
      if (node.type === 'integer') {
        expect(node.maximum, at).not.toBe(Number.MAX_SAFE_INTEGER);
        expect(node.minimum, at).not.toBe(-Number.MAX_SAFE_INTEGER);
      }
    });
  });

  it.each(KINDS.map((k) => [k.kind, k] as const))('%s: every cross-field rule is a CEL rule at its node', (_, k) => {
    const found: Array<{ at: string; rule: string; message: string }> = [];
    walk((rootSchema(k).properties as Record<string, Schema>).spec!, '', (node, at) => {
      for (const v of (node['x-kubernetes-validations'] as Array<{ rule: string; message: string }> | undefined) ?? []) found.push({ at, ...v });
    });
    expect(found).toEqual(k.rules.map((r) => ({ at: r.at.map((s) => `.${s}`).join(''), rule: r.cel, message: r.message })));
    expect(found.length).toBeGreaterThan(0);
  });
});
