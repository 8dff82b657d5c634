// JSON Schema validation for output contracts, built for the request hot path: each distinct schema
// is compiled once and its validator reused, and every error is a short located message that never
// quotes the validated data (an answer may be long or sensitive).
//
// Dialect: the route's `output.jsonSchema` is documented as draft 2020-12, so 2020-12 is the
// default. Tool `parameters` come from apps and are often older hand-written schemas, so a schema
// that names draft-07 or 2019-09 in `$schema` gets that dialect, and one with no `$schema` that
// 2020-12 rejects (typically tuple `items: [...]`) is retried as draft-07 before giving up.
import { isIPv4, isIPv6 } from 'node:net';
import { Ajv, type ErrorObject, type Options, type ValidateFunction } from 'ajv';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { Ajv2020 } from 'ajv/dist/2020.js';

/** How many errors a check reports; the rest are only counted. */
export const MAX_ERRORS = 10;

const MAX_MESSAGE = 300;
const MAX_PATH = 160;

/** A schema that cannot be compiled (invalid keyword values, unresolvable `$ref`, unknown `$schema`). */
export class SchemaError extends Error {
  override name = 'SchemaError';
}

export interface SchemaResult {
  /** The first `limit` errors, located and readable; empty when the value is valid. */
  errors: string[];
  /** All errors found, including those not listed. */
  total: number;
}

export type SchemaCheck = (value: unknown, limit?: number) => SchemaResult;

type Dialect = '2020-12' | '2019-09' | 'draft-07';

// strict: false so vendor keywords (x-*, OpenAI's own hints) in user schemas are ignored instead
// of throwing; allErrors so one repair round can fix every problem at once; logger: false because
// unknown formats would otherwise warn on every first compile.
const AJV_OPTIONS: Options = { strict: false, allErrors: true, logger: false };
const instances = new Map<Dialect, Ajv>();

function ajvFor(dialect: Dialect): Ajv {
  let ajv = instances.get(dialect);
  if (!ajv) {
    // Ajv2019/Ajv2020 share Ajv's core class; the cast only bridges their separate declarations.
    ajv = dialect === '2020-12' ? (new Ajv2020(AJV_OPTIONS) as unknown as Ajv) : dialect === '2019-09' ? (new Ajv2019(AJV_OPTIONS) as unknown as Ajv) : new Ajv(AJV_OPTIONS);
    addFormats(ajv);
    instances.set(dialect, ajv);
  }
  return ajv;
}

// The formats OpenAI's strict structured outputs constrain: without them `format` would be ignored
// here while the model is held to it upstream. Others stay unchecked (Ajv ignores unknown formats
// when not strict).
function addFormats(ajv: Ajv): void {
  ajv.addFormat('date', (s) => validDate(s));
  ajv.addFormat('time', (s) => TIME.test(s));
  ajv.addFormat('date-time', (s) => {
    const t = s.search(/[Tt ]/);
    return t === 10 && validDate(s.slice(0, 10)) && TIME_WITH_OFFSET.test(s.slice(11));
  });
  ajv.addFormat('duration', DURATION);
  ajv.addFormat('email', /^[^\s@"]+@[^\s@]+\.[^\s@.]+$/);
  ajv.addFormat('hostname', (s) => s.length <= 253 && s.split('.').every((l) => HOST_LABEL.test(l)));
  ajv.addFormat('ipv4', (s) => isIPv4(s));
  ajv.addFormat('ipv6', (s) => isIPv6(s));
  ajv.addFormat('uuid', /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i);
}

const TIME = /^([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d)?$/;
// RFC 3339 makes the offset mandatory in a date-time.
const TIME_WITH_OFFSET = /^([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d)$/;
const DURATION = /^P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$/;
const HOST_LABEL = /^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$/;

function validDate(s: string): boolean {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s);
  if (!m) return false;
  const year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  if (month < 1 || month > 12 || day < 1) return false;
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1] ?? 0;
  return day <= days;
}

function dialectOf(schema: Record<string, unknown>): Dialect | undefined | 'unknown' {
  const declared = schema.$schema;
  if (declared === undefined) return undefined;
  if (typeof declared !== 'string') return 'unknown';
  if (declared.includes('2020-12')) return '2020-12';
  if (declared.includes('2019-09')) return '2019-09';
  if (declared.includes('draft-07')) return 'draft-07';
  return 'unknown';
}

type Entry = { check: SchemaCheck } | { error: SchemaError };

// Two cache levels. By identity: a route's schema is one long-lived object from the config, so the
// hot path costs a WeakMap lookup. By content: tool `parameters` arrive as fresh objects parsed from
// every request, so they are keyed by their serialisation; that map is bounded because apps control
// how many distinct schemas there are.
const byObject = new WeakMap<object, Entry>();
const byText = new Map<string, Entry>();
const MAX_CACHED = 256;
let compilations = 0;

/** How many times a schema was really compiled (cache misses): lets tests prove the cache works. */
export function compileCount(): number {
  return compilations;
}

function lookup(schema: Record<string, unknown>): Entry {
  const known = byObject.get(schema);
  if (known) return known;
  const key = JSON.stringify(schema);
  let entry = byText.get(key);
  if (entry) {
    // Re-inserting keeps the map in least-recently-used order for eviction.
    byText.delete(key);
  } else {
    entry = build(schema);
    if (byText.size >= MAX_CACHED) {
      const oldest = byText.keys().next();
      if (!oldest.done) byText.delete(oldest.value);
    }
  }
  byText.set(key, entry);
  byObject.set(schema, entry);
  return entry;
}

function build(schema: Record<string, unknown>): Entry {
  compilations++;
  const dialect = dialectOf(schema);
  if (dialect === 'unknown') return { error: new SchemaError(`unsupported $schema ${JSON.stringify(schema.$schema)}: use draft 2020-12, 2019-09 or draft-07`) };
  try {
    return { check: checker(compileWith(dialect ?? '2020-12', schema)) };
  } catch (first) {
    if (dialect === undefined) {
      try {
        return { check: checker(compileWith('draft-07', schema)) };
      } catch {
        // The 2020-12 reason is the one to report: it is the documented dialect.
      }
    }
    return { error: new SchemaError(reasonOf(first)) };
  }
}

function compileWith(dialect: Dialect, schema: Record<string, unknown>): ValidateFunction {
  const ajv = ajvFor(dialect);
  try {
    return ajv.compile(schema);
  } finally {
    // The validator is ours to cache. Left registered, every request's schema would stay in Ajv's
    // own unbounded cache, and its `$id` would be resolvable from schemas compiled later.
    ajv.removeSchema(schema);
  }
}

function reasonOf(err: unknown): string {
  return clip(err instanceof Error ? err.message : String(err), MAX_MESSAGE);
}

function checker(validate: ValidateFunction): SchemaCheck {
  return (value, limit = MAX_ERRORS) => {
    if (validate(value)) return { errors: [], total: 0 };
    const found = validate.errors ?? [];
    return { errors: found.slice(0, limit).map(describeError), total: Math.max(found.length, 1) };
  };
}

/**
 * The validator for a schema, compiled on first use and cached. Throws SchemaError when the schema
 * cannot be compiled (also cached, so a broken schema is not recompiled on every call); config
 * loading can call this to reject a bad `output.jsonSchema` before any traffic.
 */
export function compileSchema(schema: Record<string, unknown>): SchemaCheck {
  const entry = lookup(schema);
  if ('error' in entry) throw entry.error;
  return entry.check;
}

/** Why a schema cannot be used, or undefined when it compiles. */
export function schemaProblem(schema: Record<string, unknown>): string | undefined {
  const entry = lookup(schema);
  return 'error' in entry ? entry.error.message : undefined;
}

function describeError(e: ErrorObject): string {
  const path = e.instancePath === '' ? '(root)' : clip(e.instancePath, MAX_PATH);
  return `${path}: ${clip(reasonText(e), MAX_MESSAGE)}`;
}

// Ajv's messages name the schema's expectations, never the data; a few are made more useful for a
// repair prompt by naming the offending key or the allowed values (both come from the schema or are
// property names, not free text).
function reasonText(e: ErrorObject): string {
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'additionalProperties':
      return `must NOT have additional property ${quoteKey(p.additionalProperty)}`;
    case 'unevaluatedProperties':
      return `must NOT have unevaluated property ${quoteKey(p.unevaluatedProperty)}`;
    case 'enum': {
      const values = Array.isArray(p.allowedValues) ? p.allowedValues : [];
      const shown = values.slice(0, 10).map((v) => JSON.stringify(v)).join(', ');
      return `must be one of: ${shown}${values.length > 10 ? ', …' : ''}`;
    }
    case 'const':
      return `must be equal to ${JSON.stringify(p.allowedValue)}`;
    default:
      return e.message ?? `must pass "${e.keyword}"`;
  }
}

function quoteKey(key: unknown): string {
  return `'${clip(String(key), 60)}'`;
}

function clip(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}

export type Parsed = { ok: true; value: unknown } | { ok: false; error: string };

/**
 * JSON.parse with an error that locates the problem without quoting the text: V8's own messages
 * embed a snippet of the input, so on failure a small scanner finds the position instead.
 */
export function parseJson(text: string): Parsed {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false, error: `not valid JSON: ${locateJsonError(text)}` };
  }
}

class Stop {
  readonly reason: string;
  readonly at: number;
  constructor(reason: string, at: number) {
    this.reason = reason;
    this.at = at;
  }
}

// Only run after JSON.parse failed, so it favours clarity over speed.
function locateJsonError(text: string): string {
  let i = 0;
  const n = text.length;
  const skipSpace = () => {
    while (i < n && (text[i] === ' ' || text[i] === '\t' || text[i] === '\n' || text[i] === '\r')) i++;
  };
  const unexpected = (): Stop => (i >= n ? new Stop('Unexpected end of input', i) : new Stop(`Unexpected token ${showChar(text.charCodeAt(i))}`, i));
  const expect = (c: string) => {
    if (text[i] !== c) throw unexpected();
    i++;
  };
  const string = () => {
    i++;
    for (;;) {
      if (i >= n) throw new Stop('Unterminated string', i);
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        i++;
        return;
      }
      if (c < 0x20) throw new Stop(`Bad control character ${showChar(c)} in string`, i);
      if (c === 0x5c) {
        const e = text[i + 1];
        if (e === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) throw new Stop('Bad \\u escape in string', i);
          i += 6;
        } else if (e !== undefined && '"\\/bfnrt'.includes(e)) {
          i += 2;
        } else {
          throw new Stop('Bad escape in string', i);
        }
      } else {
        i++;
      }
    }
  };
  const number = () => {
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i, i + 400));
    if (!m) throw unexpected();
    i += m[0].length;
  };
  const value = (depth: number): void => {
    if (depth > 2000) throw new Stop('Nesting too deep', i);
    skipSpace();
    const c = text[i];
    if (c === '{') {
      i++;
      skipSpace();
      if (text[i] === '}') {
        i++;
        return;
      }
      for (;;) {
        skipSpace();
        if (text[i] !== '"') throw i < n ? new Stop(`Expected property name, got ${showChar(text.charCodeAt(i))}`, i) : unexpected();
        string();
        skipSpace();
        expect(':');
        value(depth + 1);
        skipSpace();
        if (text[i] === ',') i++;
        else if (text[i] === '}') return void i++;
        else throw unexpected();
      }
    }
    if (c === '[') {
      i++;
      skipSpace();
      if (text[i] === ']') {
        i++;
        return;
      }
      for (;;) {
        value(depth + 1);
        skipSpace();
        if (text[i] === ',') i++;
        else if (text[i] === ']') return void i++;
        else throw unexpected();
      }
    }
    if (c === '"') return string();
    if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return number();
    for (const word of ['true', 'false', 'null']) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return;
      }
    }
    throw unexpected();
  };
  try {
    value(0);
    skipSpace();
    if (i < n) throw new Stop(`Unexpected token ${showChar(text.charCodeAt(i))} after the JSON value`, i);
    return 'the text could not be parsed';
  } catch (e) {
    if (!(e instanceof Stop)) return 'the text could not be parsed';
    return `${e.reason} at position ${e.at}${lineColumn(text, e.at)}`;
  }
}

function showChar(code: number): string {
  if (code < 0x20 || code === 0x7f) return `U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
  return `'${String.fromCharCode(code)}'`;
}

function lineColumn(text: string, at: number): string {
  let line = 1;
  let start = 0;
  for (let k = text.indexOf('\n'); k !== -1 && k < at; k = text.indexOf('\n', k + 1)) {
    line++;
    start = k + 1;
  }
  return line === 1 ? '' : ` (line ${line} column ${at - start + 1})`;
}
