// The manifests of examples/kubernetes, in file order.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ROOT, type KubeManifest } from './support.ts';

export const EXAMPLES_DIR = join(ROOT, 'examples/kubernetes');

export function exampleObjects(): KubeManifest[] {
  return readdirSync(EXAMPLES_DIR)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .flatMap((f) => parseAllDocuments(readFileSync(join(EXAMPLES_DIR, f), 'utf8')).map((d) => d.toJS() as KubeManifest))
    .filter((d) => !!d);
}
