import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createRedactor, placeholder, type Findings, type RedactionKind } from './redact.ts';

const KINDS: RedactionKind[] = ['email', 'phone', 'credit_card', 'iban', 'secret', 'jwt', 'private_key'];
const all = createRedactor(KINDS);

// --- Building blocks ------------------------------------------------------------------------------

const chars = (alphabet: string, minLength: number, maxLength = minLength) => fc.string({ unit: fc.constantFrom(...alphabet), minLength, maxLength });
const DIGITS = '0123456789';
const LOWER = 'abcdefghijklmnopqrstuvwxyz';
const UPPER = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
const B62 = LOWER + UPPER + DIGITS;
const TOKEN = B62 + '-_';

function luhnDigit(body: string): string {
  for (let d = 0; d <= 9; d++) {
    const n = body + d;
    let sum = 0;
    for (let i = 0; i < n.length; i++) {
      let x = Number(n[n.length - 1 - i]);
      if (i % 2 === 1) x = x * 2 > 9 ? x * 2 - 9 : x * 2;
      sum += x;
    }
    if (sum % 10 === 0) return String(d);
  }
  throw new Error('unreachable');
}

function ibanCheck(country: string, bban: string): string {
  const n = (bban + country + '00').replace(/[A-Z]/g, (c) => String(c.charCodeAt(0) - 55));
  return String(98n - (BigInt(n) % 97n)).padStart(2, '0');
}

const group = (s: string, sizes: number[], sep: string) => {
  const out: string[] = [];
  let at = 0;
  for (const n of sizes) {
    out.push(s.slice(at, at + n));
    at += n;
  }
  return out.join(sep);
};

// --- Valid values of each kind --------------------------------------------------------------------

const label = fc.tuple(chars(LOWER + DIGITS, 1, 8), fc.option(chars(LOWER + DIGITS, 1, 5), { nil: undefined })).map(([a, b]) => (b ? `${a}-${b}` : a));
const email = fc
  .tuple(
    chars(LOWER + DIGITS, 1, 10),
    fc.array(fc.tuple(fc.constantFrom('.', '_', '+', '-'), chars(LOWER + DIGITS, 1, 6)), { maxLength: 2 }),
    fc.array(label, { minLength: 1, maxLength: 3 }),
    chars(LOWER, 2, 6).filter((tld) => !/^(?:png|jpe?g|gif|svg|webp)$/.test(tld)),
    fc.boolean(),
  )
  .map(([head, rest, labels, tld, upper]) => {
    const address = `${head}${rest.map(([s, p]) => s + p).join('')}@${labels.join('.')}.${tld}`;
    return upper ? address.toUpperCase() : address;
  });

const nanpArea = fc.tuple(fc.constantFrom(...'23456789'), chars(DIGITS, 2)).map(([a, b]) => a + b);
const phone = fc.oneof(
  // International, with or without separators.
  fc
    .tuple(fc.integer({ min: 1, max: 999 }), fc.array(chars(DIGITS, 2, 4), { minLength: 2, maxLength: 4 }), fc.constantFrom(' ', '-', '.', ''))
    .filter(([cc, groups]) => {
      const n = String(cc).length + groups.join('').length;
      return n >= 8 && n <= 15;
    })
    .map(([cc, groups, sep]) => `+${cc}${sep === '' ? '' : sep}${groups.join(sep)}`),
  fc.tuple(nanpArea, chars(DIGITS, 3), chars(DIGITS, 4)).map(([a, b, c]) => `(${a}) ${b}-${c}`),
  fc.tuple(nanpArea, chars(DIGITS, 3), chars(DIGITS, 4), fc.constantFrom('-', '.', ' ')).map(([a, b, c, s]) => `${a}${s}${b}${s}${c}`),
  fc.tuple(chars(DIGITS, 2), chars(DIGITS, 4), chars(DIGITS, 4)).map(([a, b, c]) => `0${a} ${b} ${c}`),
  fc.tuple(chars(DIGITS, 3), chars(DIGITS, 8)).map(([a, b]) => `0${a} ${b}`),
);

const BRANDS: Array<{ prefix: string; length: number; groups?: number[] }> = [
  { prefix: '4', length: 16, groups: [4, 4, 4, 4] },
  { prefix: '4', length: 13 },
  { prefix: '4', length: 19, groups: [4, 4, 4, 4, 3] },
  { prefix: '51', length: 16, groups: [4, 4, 4, 4] },
  { prefix: '55', length: 16, groups: [4, 4, 4, 4] },
  { prefix: '2221', length: 16, groups: [4, 4, 4, 4] },
  { prefix: '34', length: 15, groups: [4, 6, 5] },
  { prefix: '37', length: 15, groups: [4, 6, 5] },
  { prefix: '6011', length: 16, groups: [4, 4, 4, 4] },
  { prefix: '35', length: 16, groups: [4, 4, 4, 4] },
];
const card = fc.constantFrom(...BRANDS).chain((brand) =>
  fc.tuple(chars(DIGITS, brand.length - brand.prefix.length - 1), fc.constantFrom('', ' ', '-')).map(([middle, sep]) => {
    const body = brand.prefix + middle;
    const number = body + luhnDigit(body);
    return sep && brand.groups ? group(number, brand.groups, sep) : number;
  }),
);

const IBAN_COUNTRIES: Array<[string, number]> = [['DE', 22], ['GB', 22], ['FR', 27], ['NL', 18], ['NO', 15], ['CH', 21], ['ES', 24], ['IT', 27], ['BE', 16], ['AT', 20], ['PL', 28], ['MT', 31]];
const iban = fc.constantFrom(...IBAN_COUNTRIES).chain(([country, length]) =>
  fc.tuple(chars(DIGITS + DIGITS + UPPER, length - 4), fc.boolean()).map(([bban, spaced]) => {
    const compact = country + ibanCheck(country, bban) + bban;
    return spaced ? compact.replace(/(.{4})(?=.)/g, '$1 ') : compact;
  }),
);

const b64url = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
const jwt = fc
  .tuple(
    fc.record({ alg: fc.constantFrom('HS256', 'RS256', 'ES256', 'EdDSA', 'none'), typ: fc.constantFrom('JWT', 'at+jwt', undefined), kid: fc.option(fc.string({ unit: 'grapheme', maxLength: 12 }), { nil: undefined }) }),
    fc.dictionary(fc.string({ maxLength: 8 }), fc.oneof(fc.string({ unit: 'grapheme', maxLength: 20 }), fc.integer(), fc.boolean())),
    fc.uint8Array({ minLength: 16, maxLength: 64 }),
  )
  .map(([header, payload, sig]) => `${b64url(header)}.${b64url(payload)}.${Buffer.from(sig).toString('base64url')}`);

const privateKey = fc
  .tuple(fc.constantFrom('RSA PRIVATE KEY', 'EC PRIVATE KEY', 'OPENSSH PRIVATE KEY', 'ENCRYPTED PRIVATE KEY', 'PRIVATE KEY', 'DSA PRIVATE KEY'), fc.uint8Array({ minLength: 32, maxLength: 600 }))
  .map(([label, bytes]) => {
    const body = Buffer.from(bytes).toString('base64').replace(/(.{64})(?=.)/g, '$1\n');
    return `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----`;
  });

const secret = fc.oneof(
  fc.tuple(chars(B62, 20, 60), fc.constantFrom(...DIGITS)).map(([b, d]) => `sk-${b}${d}`),
  fc.tuple(chars(TOKEN, 40, 120), fc.constantFrom(...DIGITS)).map(([b, d]) => `sk-proj-${b}${d}`),
  chars(TOKEN, 80, 95).map((b) => `sk-ant-api03-${b}AA`),
  fc.tuple(fc.constantFrom('AKIA', 'ASIA'), chars(UPPER + DIGITS, 16)).map(([p, b]) => p + b),
  fc.tuple(fc.constantFrom('ghp_', 'gho_', 'ghu_', 'ghs_', 'ghr_'), chars(B62, 36)).map(([p, b]) => p + b),
  fc.tuple(chars(B62, 22), chars(B62, 59)).map(([a, b]) => `github_pat_${a}_${b}`),
  chars(B62 + '_', 20).map((b) => `glpat-${b}`),
  fc.tuple(fc.constantFrom(...'abpsr'), chars(DIGITS, 10, 13), chars(DIGITS, 10, 13), chars(B62, 24)).map(([k, a, b, c]) => `xox${k}-${a}-${b}-${c}`),
  fc.tuple(fc.constantFrom('sk_live_', 'rk_live_', 'sk_test_'), chars(B62, 24, 99)).map(([p, b]) => p + b),
  chars(TOKEN, 35).map((b) => `AIza${b}`),
);

const VALUES: Record<RedactionKind, fc.Arbitrary<string>> = { email, phone, credit_card: card, iban, secret, jwt, private_key: privateKey };

// --- Surroundings ---------------------------------------------------------------------------------

const context = fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: 'grapheme', maxLength: 20 }), fc.string({ unit: 'binary', maxLength: 20 }));
// A bare space or parenthesis beside digits makes them one number ("7 555-123-4567"), so phones
// are set off by punctuation that cannot join or extend a number; the rest may also use those.
const SEPARATED = ['\n', '\t', '; ', ', ', ': ', '"', "'", '<', '>', '!', '?', '|', '[', ']', ' — '];
const SEPARATORS: Record<RedactionKind, string[]> = {
  phone: SEPARATED,
  email: [...SEPARATED, ' ', '(', ')'],
  credit_card: [...SEPARATED, ' ', '(', ')'],
  iban: [...SEPARATED, ' ', '(', ')'],
  secret: [...SEPARATED, ' ', '(', ')'],
  jwt: [...SEPARATED, ' ', '(', ')'],
  private_key: [...SEPARATED, ' ', '(', ')'],
};

const planted = (kind: RedactionKind) =>
  fc.record({ before: context, left: fc.constantFrom(...SEPARATORS[kind]), value: VALUES[kind], right: fc.constantFrom(...SEPARATORS[kind]), after: context });

// Pieces that start, end or imitate the patterns, for texts that sit on their edges.
const FRAGMENTS = [
  '0', '1', '4', '9', '12', '2024', ' ', '-', '.', ',', ':', '/', '+', '(', ')', '@', 'a', 'Z', 'é', '中', '_', '=', '"', "'", '\\', '\n', '%', '$', '[', ']',
  'e', 'eyJ', 'sk-', 'ghp_', 'AKIA', 'AIza', 'xoxb-', 'glpat-', '-----BEGIN ', 'PRIVATE KEY-----', '-----END ', 'RSA ', 'DE89', 'GB82 ', '4111',
  'password=', 'token: ', '"secret": "', 'Bearer ', '://', 'u:p@', '.com', 'example', '[EMAIL]', '[SECRET]', '\0',
];
const fragmentText = fc.array(fc.constantFrom(...FRAGMENTS), { maxLength: 40 }).map((p) => p.join(''));

function expectCountsOnly(findings: Findings): void {
  for (const [kind, n] of Object.entries(findings)) {
    expect(KINDS).toContain(kind);
    expect(Number.isInteger(n) && n > 0).toBe(true);
  }
}

// --- Properties -----------------------------------------------------------------------------------

describe('redact, fuzzed', () => {
  it('never throws on any text, returns a string, and changes nothing unless it reports a finding', () => {
    const anyText = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 200 }),
      fc.string({ unit: 'grapheme', maxLength: 100 }),
      // Lone surrogates and control characters too.
      fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 200 }),
      fragmentText,
    );
    fc.assert(
      fc.property(anyText, fc.subarray(KINDS), (text, kinds) => {
        const r = createRedactor(kinds).redact(text);
        expect(typeof r.text).toBe('string');
        expectCountsOnly(r.findings);
        for (const kind of Object.keys(r.findings)) expect(kinds).toContain(kind);
        if (Object.keys(r.findings).length === 0) expect(r.text).toBe(text);
      }),
      { numRuns: 500 },
    );
  });

  it.each(KINDS)('finds a planted %s wherever it sits, alone or with every other kind', (kind) => {
    const own = createRedactor([kind]);
    fc.assert(
      fc.property(planted(kind), ({ before, left, value, right, after }) => {
        const text = before + left + value + right + after;
        for (const redactor of [own, all]) {
          const r = redactor.redact(text);
          expect(r.text).not.toContain(value);
          expect(r.text).toContain(placeholder(kind));
          expect(r.findings[kind] ?? 0).toBeGreaterThanOrEqual(1);
        }
      }),
      { numRuns: 250 },
    );
  });

  it('is idempotent: redacting its output changes nothing and finds nothing', () => {
    const piece = fc.oneof(context, fragmentText, ...KINDS.map((k) => VALUES[k]), fc.constantFrom(...SEPARATED, ' '));
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 12 }), fc.subarray(KINDS, { minLength: 1 }), (pieces, kinds) => {
        const redactor = createRedactor(kinds);
        const once = redactor.redact(pieces.join('')).text;
        expect(redactor.redact(once)).toEqual({ text: once, findings: {} });
      }),
      { numRuns: 400 },
    );
  });

  it('stays linear on long adversarial texts', () => {
    const SIZE = 256 * 1024;
    const hostile = fc.array(fc.constantFrom(...FRAGMENTS, '1111', '1 ', '1-', 'a@', 'a.', 'eyJhbGciOiJIUzI1NiJ9.', 'password="'), { minLength: 1, maxLength: 6 }).map((p) => p.join(''));
    fc.assert(
      fc.property(hostile, (unit) => {
        const text = unit.repeat(Math.ceil(SIZE / unit.length)).slice(0, SIZE);
        const time = (t: string) => {
          const t0 = performance.now();
          all.redact(t);
          return performance.now() - t0;
        };
        // In proportion to the length, not within a time budget: an eighth of the text takes
        // about an eighth of the time, where a quadratic pattern would take ~64 times more.
        const part = time(text.slice(0, SIZE >> 3));
        expect(time(text)).toBeLessThan(24 * Math.max(part, 5));
      }),
      { numRuns: 12 },
    );
  });
});
