// Reading manifests: YAML (or JSON) files, possibly multi-document, possibly a folder of them,
// into validated AIRoutes and AIBudgets or a rendered SidecarConfig, with every problem located
// by file, document, object and field path so a person can fix it without guessing.
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { z } from 'zod';
import { AIBudget, AIRoute, GROUP, SIDECAR_CONFIG_KIND, SidecarConfig } from './schema.ts';
import { contentHash } from './canonical.ts';
import { kubeErrors } from './kube-messages.ts';

export interface Problem {
  file: string;
  /** 1-based index of the YAML document in its file; 0 when no single document is at fault. */
  document: number;
  /** `Kind namespace/name` when the document got that far. */
  object?: string;
  /** Field path such as `spec.model.fallbacks[0]`; empty for the whole document. */
  path: string;
  message: string;
}

export interface SourceFile {
  file: string;
  text: string;
}

export interface Manifests {
  routes: AIRoute[];
  budgets: AIBudget[];
  configs: SidecarConfig[];
  problems: Problem[];
  /** Documents of other API groups (Secrets, Deployments...): not ours to judge. */
  skipped: number;
}

const MANIFEST_FILE = /\.(ya?ml|json)$/i;

/** Whether readSources reads this file of a folder: a manifest, not a hidden file. */
export function isManifestName(name: string): boolean {
  return !name.startsWith('.') && MANIFEST_FILE.test(name);
}

/** A file, or every manifest file directly in a folder (dot-entries such as a ConfigMap volume's `..data` are skipped). */
export async function readSources(path: string): Promise<SourceFile[]> {
  const info = await stat(path);
  if (!info.isDirectory()) return [{ file: path, text: await readFile(path, 'utf8') }];
  const names = (await readdir(path)).filter(isManifestName).sort();
  const files: SourceFile[] = [];
  for (const name of names) {
    const file = join(path, name);
    if ((await stat(file)).isFile()) files.push({ file, text: await readFile(file, 'utf8') });
  }
  return files;
}

export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else if (typeof part === 'string' && /^[A-Za-z_][A-Za-z0-9_]*$/.test(part)) out += out ? `.${part}` : part;
    else out += `[${JSON.stringify(String(part))}]`;
  }
  return out;
}

export function formatProblem(p: Problem): string {
  // Document 0: a problem of the file or folder as a whole, or between resources.
  const where = [p.document > 0 ? `${p.file}: document ${p.document}` : p.file];
  if (p.object) where.push(`(${p.object})`);
  return `${where.join(' ')}: ${p.path ? `${p.path}: ` : ''}${p.message}`;
}

function issuesToProblems(issues: z.core.$ZodIssue[], base: Omit<Problem, 'path' | 'message'>): Problem[] {
  const problems: Problem[] = [];
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        problems.push({ ...base, path: formatPath([...issue.path, key]), message: 'unknown field' });
      }
      continue;
    }
    const missing = issue.code === 'invalid_type' && issue.input === undefined;
    problems.push({ ...base, path: formatPath(issue.path), message: missing ? 'required field is missing' : issue.message });
  }
  return problems;
}

// Custom resources are reported in the API server's words (see kube-messages.ts), so a pipeline
// that runs `validate` sees what `kubectl apply` would have said.
function resourceProblems(kind: string, issues: z.core.$ZodIssue[], base: Omit<Problem, 'path' | 'message'>): Problem[] {
  return issues.flatMap((issue) => kubeErrors(kind, issue).map((e) => ({ ...base, path: e.path, message: e.message })));
}

function describe(doc: Record<string, unknown>): string | undefined {
  const meta = doc.metadata as Record<string, unknown> | undefined;
  if (!meta || typeof meta.name !== 'string') return undefined;
  const ns = typeof meta.namespace === 'string' ? meta.namespace : 'default';
  return `${String(doc.kind)} ${ns}/${meta.name}`;
}

/** Parses and validates every document of every source. Never throws on bad input. */
export function parseManifests(sources: SourceFile[]): Manifests {
  const out: Manifests = { routes: [], budgets: [], configs: [], problems: [], skipped: 0 };
  const seen = new Map<string, string>();
  for (const { file, text } of sources) {
    const docs = parseAllDocuments(text);
    const list = Array.isArray(docs) ? docs : [docs];
    list.forEach((doc, i) => {
      const document = i + 1;
      if (doc.errors.length > 0) {
        for (const err of doc.errors) {
          // The library's first line already names the line and column.
          out.problems.push({ file, document, path: '', message: `YAML syntax: ${(err.message.split('\n')[0] ?? '').replace(/:$/, '')}` });
        }
        return;
      }
      const value: unknown = doc.toJS({ maxAliasCount: 100 });
      if (value === null || value === undefined) return;
      if (typeof value !== 'object' || Array.isArray(value)) {
        out.problems.push({ file, document, path: '', message: 'a manifest must be a mapping with apiVersion and kind' });
        return;
      }
      const obj = value as Record<string, unknown>;
      const apiVersion = typeof obj.apiVersion === 'string' ? obj.apiVersion : '';
      if (!apiVersion.startsWith(`${GROUP}/`)) {
        if (!apiVersion) out.problems.push({ file, document, path: 'apiVersion', message: 'required field is missing' });
        else out.skipped++;
        return;
      }
      const object = describe(obj);
      const base = { file, document, ...(object ? { object } : {}) };
      const kind = obj.kind;
      if (kind === 'AIRoute' || kind === 'AIBudget') {
        const schema = kind === 'AIRoute' ? AIRoute : AIBudget;
        const result = schema.safeParse(obj, { reportInput: true });
        if (!result.success) {
          out.problems.push(...resourceProblems(kind, result.error.issues, base));
          return;
        }
        const key = `${kind} ${result.data.metadata.namespace}/${result.data.metadata.name}`;
        const first = seen.get(key);
        if (first) {
          out.problems.push({ ...base, path: 'metadata.name', message: `${key} is defined twice (first in ${first})` });
          return;
        }
        seen.set(key, `${file} document ${document}`);
        if (result.data.kind === 'AIRoute') out.routes.push(result.data);
        else out.budgets.push(result.data as AIBudget);
        return;
      }
      if (kind === SIDECAR_CONFIG_KIND) {
        const result = SidecarConfig.safeParse(obj, { reportInput: true });
        if (!result.success) {
          out.problems.push(...issuesToProblems(result.error.issues, { file, document, object: SIDECAR_CONFIG_KIND }));
          return;
        }
        const expected = contentHash({ routes: result.data.routes, budgets: result.data.budgets, state: result.data.state });
        if (result.data.version !== expected) {
          out.problems.push({ file, document, object: SIDECAR_CONFIG_KIND, path: 'version', message: `does not match the content (expected ${expected}): the file was edited or damaged; render it again` });
          return;
        }
        out.configs.push(result.data);
        return;
      }
      out.problems.push({ ...base, path: 'kind', message: `unknown kind '${String(kind)}' in ${GROUP} (expected AIRoute, AIBudget or ${SIDECAR_CONFIG_KIND})` });
    });
  }
  return out;
}
