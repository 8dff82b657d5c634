import { describe, expect, it, vi } from 'vitest';
import { compileCount, compileSchema, MAX_ERRORS, parseJson, SchemaError, schemaProblem } from './json-schema.ts';

describe('compileSchema', () => {
  it('reports located errors: JSON pointer paths, (root) for the top, and the offending key or allowed values', () => {
    const check = compileSchema({
      type: 'object',
      properties: {
        category: { enum: ['billing', 'shipping'] },
        items: { type: 'array', items: { type: 'object', properties: { price: { type: 'number' } } } },
      },
      required: ['category', 'items'],
      additionalProperties: false,
    });
    expect(check({ category: 'billing', items: [{ price: 3 }] })).toEqual({ errors: [], total: 0 });
    const r = check({ items: [{ price: 'cheap' }], extra: 1 });
    expect(r.errors).toEqual([
      "(root): must have required property 'category'",
      "(root): must NOT have additional property 'extra'",
      '/items/0/price: must be number',
    ]);
    expect(r.total).toBe(3);
    expect(check({ category: 'returns', items: [] }).errors).toEqual(['/category: must be one of: "billing", "shipping"']);
  });

  it('never quotes the validated data in its messages', () => {
    const check = compileSchema({ type: 'object', properties: { note: { type: 'number' }, code: { const: 'A' } } });
    const secret = 'card 4111 1111 1111 1111 belongs to Jane';
    const r = check({ note: secret, code: secret });
    expect(r.errors).toHaveLength(2);
    for (const e of r.errors) expect(e).not.toContain('4111');
  });

  it('lists at most the limit, but counts every error', () => {
    const check = compileSchema({ type: 'array', items: { type: 'integer' } });
    const r = check(Array.from({ length: 25 }, () => 'x'));
    expect(r.errors).toHaveLength(MAX_ERRORS);
    expect(r.total).toBe(25);
    expect(check(['a', 'b', 'c'], 2).errors).toEqual(['/0: must be integer', '/1: must be integer']);
  });

  it('compiles each schema once: same object, and equal content in a fresh object, reuse the validator', () => {
    const schema = { type: 'object', properties: { cache_probe_1: { type: 'string' } } };
    const before = compileCount();
    const first = compileSchema(schema);
    expect(compileCount()).toBe(before + 1);
    expect(compileSchema(schema)).toBe(first);
    // As tool parameters arrive: parsed anew from every request body.
    const again = compileSchema(JSON.parse(JSON.stringify(schema)) as Record<string, unknown>);
    expect(again).toBe(first);
    expect(compileCount()).toBe(before + 1);
    compileSchema({ type: 'object', properties: { cache_probe_2: { type: 'string' } } });
    expect(compileCount()).toBe(before + 2);
  });

  it('finds a long-lived schema by identity, without re-serialising it on every call', () => {
    const schema = { type: 'object', properties: { identity_probe: { type: 'string' } } };
    compileSchema(schema);
    const stringify = vi.spyOn(JSON, 'stringify');
    try {
      for (let i = 0; i < 10; i++) compileSchema(schema);
      expect(stringify).not.toHaveBeenCalled();
    } finally {
      stringify.mockRestore();
    }
  });

  it('bounds the content cache: long-unused schemas are evicted and compiled again', () => {
    const make = (i: number) => ({ type: 'object', properties: { [`evict_${i}`]: { type: 'number' } } });
    compileSchema(make(0));
    for (let i = 1; i <= 300; i++) compileSchema(make(i));
    const before = compileCount();
    compileSchema(make(300)); // recent: still cached
    expect(compileCount()).toBe(before);
    compileSchema(make(0)); // a fresh object with evicted content: recompiled
    expect(compileCount()).toBe(before + 1);
  });

  it('caches a broken schema as broken instead of retrying it on every call', () => {
    const bad = { type: 'strnig' };
    expect(() => compileSchema(bad)).toThrow(SchemaError);
    const before = compileCount();
    expect(() => compileSchema(bad)).toThrow(/schema is invalid/);
    expect(schemaProblem(bad)).toMatch(/type/);
    expect(compileCount()).toBe(before);
    expect(schemaProblem({ type: 'string' })).toBeUndefined();
  });

  it('keeps compiled schemas apart: an $id seen before is not resolvable by a later schema', () => {
    compileSchema({ $id: 'https://example.com/leak', type: 'string' });
    expect(() => compileSchema({ $ref: 'https://example.com/leak' })).toThrow(/can't resolve reference/);
  });

  it('lets different schemas share an $id', () => {
    const a = compileSchema({ $id: 'https://example.com/args', type: 'object', required: ['a'] });
    const b = compileSchema({ $id: 'https://example.com/args', type: 'object', required: ['b'] });
    expect(a({ a: 1 }).total).toBe(0);
    expect(b({ a: 1 }).errors).toEqual(["(root): must have required property 'b'"]);
  });

  it('defaults to draft 2020-12, honours a declared draft-07, and retries an undeclared legacy schema as draft-07', () => {
    // prefixItems only means something in 2020-12.
    const tuple2020 = compileSchema({ type: 'array', prefixItems: [{ type: 'string' }, { type: 'number' }] });
    expect(tuple2020(['a', 'b']).errors).toEqual(['/1: must be number']);
    const tuple07 = compileSchema({ $schema: 'http://json-schema.org/draft-07/schema#', type: 'array', items: [{ type: 'string' }], additionalItems: false });
    expect(tuple07(['a', 'b']).errors).toEqual(['(root): must NOT have more than 1 items']);
    const legacy = compileSchema({ type: 'array', items: [{ type: 'string' }, { type: 'number' }] });
    expect(legacy(['a', 'b']).errors).toEqual(['/1: must be number']);
    expect(() => compileSchema({ $schema: 'http://json-schema.org/draft-04/schema#', type: 'string' })).toThrow(/unsupported \$schema/);
  });

  it('resolves recursive $refs through $defs and definitions', () => {
    const check = compileSchema({
      type: 'object',
      properties: { root: { $ref: '#/$defs/node' }, alt: { $ref: '#/definitions/leaf' } },
      $defs: { node: { type: 'object', properties: { value: { type: 'number' }, children: { type: 'array', items: { $ref: '#/$defs/node' } } } } },
      definitions: { leaf: { type: 'boolean' } },
    });
    expect(check({ root: { value: 1, children: [{ value: 2, children: [{ value: 'x' }] }] }, alt: 3 }).errors).toEqual([
      '/root/children/0/children/0/value: must be number',
      '/alt: must be boolean',
    ]);
  });

  it('checks the formats OpenAI strict mode constrains', () => {
    const check = compileSchema({
      type: 'object',
      properties: {
        at: { type: 'string', format: 'date-time' },
        day: { type: 'string', format: 'date' },
        id: { type: 'string', format: 'uuid' },
        mail: { type: 'string', format: 'email' },
        span: { type: 'string', format: 'duration' },
        ip: { type: 'string', format: 'ipv4' },
      },
    });
    expect(check({ at: '2026-02-28T10:00:00Z', day: '2024-02-29', id: '123e4567-e89b-12d3-a456-426614174000', mail: 'a@b.co', span: 'PT1H30M', ip: '10.0.0.1' }).total).toBe(0);
    expect(check({ at: '2026-02-28T10:00:00', day: '2026-02-29', id: 'nope', mail: 'a@b', span: 'P', ip: '300.0.0.1' }).errors).toEqual([
      '/at: must match format "date-time"',
      '/day: must match format "date"',
      '/id: must match format "uuid"',
      '/mail: must match format "email"',
      '/span: must match format "duration"',
      '/ip: must match format "ipv4"',
    ]);
  });

  it('ignores vendor keywords and unknown formats instead of throwing', () => {
    const check = compileSchema({ type: 'object', 'x-openai-hint': true, properties: { a: { type: 'string', format: 'x-custom' } } });
    expect(check({ a: 'anything' }).total).toBe(0);
  });
});

describe('parseJson', () => {
  it('parses valid JSON', () => {
    expect(parseJson(' {"a":[1,2,{"b":null}]} ')).toEqual({ ok: true, value: { a: [1, 2, { b: null }] } });
  });

  it('locates the problem with a position, and line/column when the text spans lines', () => {
    const text = '{"category": "x", }';
    expect(parseJson(text)).toEqual({ ok: false, error: `not valid JSON: Expected property name, got '}' at position ${text.indexOf('}')}` });
    expect(parseJson('{"a": [1, 2')).toEqual({ ok: false, error: 'not valid JSON: Unexpected end of input at position 11' });
    expect(parseJson('{"a": tru}')).toEqual({ ok: false, error: "not valid JSON: Unexpected token 't' at position 6" });
    expect(parseJson('{"a": 1} trailing')).toEqual({ ok: false, error: "not valid JSON: Unexpected token 't' after the JSON value at position 9" });
    expect(parseJson('{\n  "a": 1,\n  "b": 01\n}')).toEqual({ ok: false, error: "not valid JSON: Unexpected token '1' at position 20 (line 3 column 9)" });
    expect(parseJson('"tab\there"')).toEqual({ ok: false, error: 'not valid JSON: Bad control character U+0009 in string at position 4' });
    expect(parseJson('')).toEqual({ ok: false, error: 'not valid JSON: Unexpected end of input at position 0' });
  });

  it('never quotes the text (V8 messages would)', () => {
    const text = 'Sure! Here is the JSON for Jane Doe, card 4111: {"a": 1}';
    const r = parseJson(text);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error).toBe("not valid JSON: Unexpected token 'S' at position 0");
      expect(r.error).not.toContain('Jane');
    }
  });

  it('finds an error in a markdown-fenced answer, a common failure without structured output', () => {
    expect(parseJson('```json\n{"a": 1}\n```')).toEqual({ ok: false, error: "not valid JSON: Unexpected token '`' at position 0" });
  });
});
