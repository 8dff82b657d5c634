// The manifest corpus of crds/testdata: invalid.yaml, each case with the lines the API server
// and `validate` must both produce for it, and valid.yaml, cases at the edge of a rule that both
// must accept.
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { API_VERSION } from '../../crds/schema.ts';

export interface CorpusCase {
  name: string;
  manifest: Record<string, unknown> & { kind: string; metadata: { name: string; namespace: string } };
  /** `field: message`, in the API server's words. */
  errors: string[];
}

function load(file: string): CorpusCase[] {
  const raw = parse(readFileSync(new URL(`../../crds/testdata/${file}`, import.meta.url), 'utf8')) as Array<{ name: string; manifest: Record<string, unknown>; errors?: string[] }>;
  return raw.map((c) => ({
    name: c.name,
    errors: c.errors ?? [],
    // Cases leave out what every manifest repeats; the API server needs a name and namespace.
    manifest: {
      apiVersion: API_VERSION,
      ...c.manifest,
      metadata: { name: 'corpus', namespace: 'default', ...(c.manifest.metadata as object | undefined) },
    } as unknown as CorpusCase['manifest'],
  }));
}

export function invalidCases(): CorpusCase[] {
  return load('invalid.yaml');
}

/** Cases both must accept (`errors` is empty). */
export function validCases(): CorpusCase[] {
  return load('valid.yaml');
}
