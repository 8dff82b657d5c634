// zod issues of an AIRoute or AIBudget, worded as the Kubernetes API server words its refusals,
// with the same field paths, so `validate` and `kubectl apply` say the same thing about the same
// mistake. The wording is that of the apiextensions server: a field error (`Required value`,
// `Invalid value: V: DETAIL`, `Unsupported value: V: supported values: ...`) whose detail, for a
// schema check, repeats the path (`spec.x in body should be ...`). Lists appear without indices
// and map keys as plain path segments, as the server prints them. Exceptions, as in recent
// servers: a failed CEL rule shows its node's type (`Invalid value: "object"`), not a dump of the
// whole object as 1.24 did; an unknown field reads as strict field validation reports it.
import type { z } from 'zod';
import { crd, KINDS } from './generate.ts';

type Schema = Record<string, unknown>;

export interface KubeFieldError {
  path: string;
  message: string;
}

const specSchemas = new Map<string, Schema>();

function specSchema(kind: string): Schema | undefined {
  if (!specSchemas.has(kind)) {
    const k = KINDS.find((x) => x.kind === kind);
    if (!k) return undefined;
    const versions = (crd(k).spec as { versions: Array<{ schema: { openAPIV3Schema: Schema } }> }).versions;
    specSchemas.set(kind, (versions[0]!.schema.openAPIV3Schema.properties as Record<string, Schema>).spec!);
  }
  return specSchemas.get(kind);
}

/** The CRD schema node at a zod path below `spec`. */
function schemaAt(kind: string, path: ReadonlyArray<PropertyKey>): Schema | undefined {
  let node = specSchema(kind);
  for (const seg of path) {
    if (!node) return undefined;
    if (typeof seg === 'number') node = node.items as Schema | undefined;
    else node = ((node.properties as Record<string, Schema> | undefined)?.[String(seg)] ?? node.additionalProperties) as Schema | undefined;
  }
  return node;
}

/** A field path as the API server prints it: dotted, without list indices. */
export function kubePath(path: ReadonlyArray<PropertyKey>): string {
  return path
    .filter((p) => typeof p !== 'number')
    .map(String)
    .join('.');
}

/** The JSON type name the server's schema validator reports for a value. */
function jsonType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

/** A float as Go's `%v` prints it: shortest digits, exponent form from 1e6 or below 1e-4. */
function goFloat(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  const exp = Math.floor(Math.log10(Math.abs(n)));
  if (n !== 0 && (exp < -4 || exp >= 6)) {
    const [mant, e] = n.toExponential().split('e') as [string, string];
    const sign = e.startsWith('-') ? '-' : '+';
    return `${mant}e${sign}${e.replace(/^[-+]/, '').padStart(2, '0')}`;
  }
  return String(n);
}

/** A bad value as a field error shows it: numbers and booleans bare, strings quoted. */
export function goValue(v: unknown): string {
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : goFloat(v);
  if (typeof v === 'boolean') return String(v);
  if (typeof v === 'string') return JSON.stringify(v);
  return JSON.stringify(jsonType(v));
}

const RFC1123 =
  "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

// The API server checks metadata.name itself, with ObjectMeta's own wording.
function nameError(issue: z.core.$ZodIssue, input: unknown): KubeFieldError {
  if (issue.code === 'too_small' || input === undefined) return { path: 'metadata.name', message: 'Required value: name or generateName is required' };
  if (issue.code === 'too_big') return { path: 'metadata.name', message: `Invalid value: ${goValue(input)}: must be no more than 253 characters` };
  return { path: 'metadata.name', message: `Invalid value: ${goValue(input)}: ${RFC1123}` };
}

function bound(issue: { origin: string; inclusive?: boolean }, limit: number | bigint, small: boolean): string {
  const n = Number(limit);
  if (issue.origin === 'string') return small ? `should be at least ${n} chars long` : `should be at most ${n} chars long`;
  if (issue.origin === 'array') return small ? `should have at least ${n} items` : `should have at most ${n} items`;
  const word = small ? 'greater than' : 'less than';
  return `should be ${word}${issue.inclusive ? ' or equal to' : ''} ${goValue(n)}`;
}

/** The API server's field errors for one zod issue of an AIRoute or AIBudget (`kind`). */
export function kubeErrors(kind: string, issue: z.core.$ZodIssue): KubeFieldError[] {
  const path = issue.path;
  const input = (issue as { input?: unknown }).input;
  if (path[0] === 'metadata' && path[1] === 'name' && path.length === 2) return [nameError(issue, input)];
  const where = kubePath(path);
  switch (issue.code) {
    case 'unrecognized_keys':
      return issue.keys.map((key) => {
        const p = kubePath([...path, key]);
        return { path: p, message: `unknown field "${p}"` };
      });
    case 'invalid_type': {
      if (input === undefined) return [{ path: where, message: 'Required value' }];
      const schema = path[0] === 'spec' ? schemaAt(kind, path.slice(1)) : undefined;
      const expected = typeof schema?.type === 'string' ? schema.type : issue.expected === 'int' ? 'integer' : issue.expected === 'record' ? 'object' : issue.expected;
      const actual = JSON.stringify(jsonType(input));
      return [{ path: where, message: `Invalid value: ${actual}: ${where} in body must be of type ${expected}: ${actual}` }];
    }
    case 'too_small':
    case 'too_big': {
      const small = issue.code === 'too_small';
      const limit = small ? (issue as { minimum: number }).minimum : (issue as { maximum: number }).maximum;
      const shown = issue.origin === 'array' && Array.isArray(input) ? input.length : input;
      return [{ path: where, message: `Invalid value: ${goValue(shown)}: ${where} in body ${bound(issue, limit, small)}` }];
    }
    case 'invalid_value':
      return [{ path: where, message: `Unsupported value: ${goValue(input)}: supported values: ${issue.values.map((v) => JSON.stringify(String(v))).join(', ')}` }];
    case 'invalid_format': {
      const schema = path[0] === 'spec' ? schemaAt(kind, path.slice(1)) : undefined;
      const pattern = typeof schema?.pattern === 'string' ? schema.pattern : (issue.pattern ?? '');
      return [{ path: where, message: `Invalid value: ${goValue(input)}: ${where} in body should match '${pattern}'` }];
    }
    case 'custom':
      // A cross-field rule: CEL on an object node.
      return [{ path: where, message: `Invalid value: "object": ${issue.message}` }];
    default:
      return [{ path: where, message: `Invalid value: ${goValue(input)}: ${issue.message}` }];
  }
}
