import { Buffer } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import { createRedactor, mapTexts, mergeFindings, placeholder, redactBody, type RedactionKind, type TextEndpoint } from './redact.ts';

const ALL: RedactionKind[] = ['email', 'phone', 'credit_card', 'iban', 'secret', 'jwt', 'private_key'];
const all = createRedactor(ALL);
const only = (kind: RedactionKind) => createRedactor([kind]);

const b64url = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
const jwt = (header: unknown, payload: unknown = { sub: '1234567890', iat: 1516239022 }, sig = 'SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c') =>
  `${b64url(header)}.${b64url(payload)}${sig === '' ? '.' : `.${sig}`}`;

// Independent checks, so the fixtures below are known good or bad before the redactor sees them.
function luhnOk(number: string): boolean {
  const d = number.replace(/\D/g, '');
  let sum = 0;
  for (let i = 0; i < d.length; i++) {
    let x = Number(d[d.length - 1 - i]);
    if (i % 2 === 1) x = x * 2 > 9 ? x * 2 - 9 : x * 2;
    sum += x;
  }
  return sum % 10 === 0;
}
function withLuhn(body: string): string {
  for (let d = 0; d <= 9; d++) if (luhnOk(body + d)) return body + d;
  throw new Error('unreachable');
}
function ibanOk(iban: string): boolean {
  const s = iban.replace(/ /g, '');
  const n = (s.slice(4) + s.slice(0, 4)).replace(/[A-Z]/g, (c) => String(c.charCodeAt(0) - 55));
  return BigInt(n) % 97n === 1n;
}

// Provider tokens are assembled here so that secret scanners do not flag this file.
const TOKENS = {
  openai: 'sk-' + 'proj-' + 'Xy7Qm2Lp9Rt4Vw8Zb3Nc6Hd1Fg5Jk0As',
  openaiLegacy: 'sk-' + 'T3BlbkFJ'.repeat(6),
  anthropic: 'sk-' + 'ant-api03-' + 'aB3_dE6-gH9'.repeat(8),
  aws: 'AKIA' + 'IOSFODNN7EXAMPLE',
  awsSession: 'ASIA' + 'Q3EXAMPLE7KEYID9',
  github: 'ghp_' + 'aB3dE6gH9j'.repeat(3) + 'kL2mN5',
  githubOauth: 'gho_' + 'Zz9Yy8Xx7W'.repeat(3) + 'w6Vv5U',
  githubPat: 'github_pat_' + '11ABCDEFG0' + 'abcdefghijkl' + '_' + 'Mn0Pq1Rs2Tu3Vw4Xy5Za6Bc7De8Fg9Hi0Jk1Lm2No3Pq4Rs5Tu6Vw7Xy8Za9B',
  gitlab: 'glpat-' + 'xY9-zW8_vU7tS6rQ5pO4',
  slack: 'xoxb-' + '123456789012-1234567890123-' + 'AbCdEfGhIjKlMnOpQrStUvWx',
  stripe: 'sk_live_' + '4eC39HqLyjWDarjtT1zdp7dc',
  stripeRestricted: 'rk_live_' + '51H8mQ2eZvKYlo2C0aBcDeFg',
  stripeTest: 'sk_test_' + 'BQokikJOvBiI2HlWgH4olfQ2',
  google: 'AIza' + 'SyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY',
} as const;

const PEM_BODY = ['MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj', 'MZEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu', 'NMoSfm76oqFvAp8Gy0iz5sxjZmSnXyCdPEovGhLa0VzMaQ8s+CLOyS56YyCFGeJZ', 'AgMBAAE='];
const pem = (label: string, body = PEM_BODY) => `-----BEGIN ${label}-----\n${body.join('\n')}\n-----END ${label}-----`;

describe('placeholder', () => {
  it('names each kind in upper case between brackets', () => {
    expect(ALL.map(placeholder)).toEqual(['[EMAIL]', '[PHONE]', '[CREDIT_CARD]', '[IBAN]', '[SECRET]', '[JWT]', '[PRIVATE_KEY]']);
  });
});

describe('createRedactor', () => {
  it('returns one instance per set of kinds, whatever the order or repetition, with the kinds canonical', () => {
    const a = createRedactor(['phone', 'email']);
    expect(createRedactor(['email', 'phone', 'email'])).toBe(a);
    expect(a.kinds).toEqual(['email', 'phone']);
    expect(createRedactor(['email'])).not.toBe(a);
    expect(createRedactor([...ALL].reverse())).toBe(all);
  });

  it('refuses an unknown kind rather than silently redacting less', () => {
    expect(() => createRedactor(['email', 'ssn' as RedactionKind])).toThrow(/unknown redaction kind 'ssn'/);
  });

  it('with no kinds, changes nothing', () => {
    const text = `a@example.com ${TOKENS.openai} 4111 1111 1111 1111`;
    expect(createRedactor([]).redact(text)).toEqual({ text, findings: {} });
  });
});

describe('email', () => {
  it('replaces addresses and counts them', () => {
    const r = only('email').redact('Write to john.doe+news@example.co.uk, jane_o-k@mail.example.org. Or MÜLLER@Example.DE; 请联系li@example.cn谢谢');
    expect(r.text).toBe('Write to [EMAIL], [EMAIL]. Or [EMAIL]; 请联系[EMAIL]谢谢');
    expect(r.findings).toEqual({ email: 4 });
  });

  it('leaves what only looks like an address', () => {
    const text = 'logo@2x.png, npm i react@18.2.0, @mention, root@localhost, a@b.c, me@-bad-.com, x@.com, @example.com';
    expect(only('email').redact(text)).toEqual({ text, findings: {} });
  });

  it('allows the 64 characters a local part may have, not more', () => {
    const local = 'a'.repeat(64);
    expect(only('email').redact(`${local}@example.com`).text).toBe('[EMAIL]');
    const text = `b${local}@example.com`;
    expect(only('email').redact(text)).toEqual({ text, findings: {} });
  });

  it('does not take a sentence-ending dot as part of the domain', () => {
    expect(only('email').redact('Mail a@example.com.').text).toBe('Mail [EMAIL].');
  });
});

describe('phone', () => {
  const phones = [
    '+1 (555) 123-4567',
    '+1 555-123-4567',
    '+1.555.123.4567',
    '+44 20 7946 0958',
    '+44 (0)20 7946 0958',
    '+33 6 12 34 56 78',
    '+4930123456',
    '(555) 123-4567',
    '555-123-4567',
    '555.123.4567',
    '1-800-555-0199',
    '020 7946 0958',
    '06 12 34 56 78',
    '030 12345678',
    '0151 23456789',
    // Its last 14 digits pass the card checksum: still a phone, not a card.
    '+1 5853 7427 5709 42',
  ];
  it.each(phones)('replaces %s', (phone) => {
    const r = only('phone').redact(`Call ${phone} today.`);
    expect(r.text).toBe('Call [PHONE] today.');
    expect(r.findings).toEqual({ phone: 1 });
  });

  const notPhones = [
    'Released 2024-01-15, patched 15.01.2024 and 01-15-2024 at 2024-01-15 10:30:00 (2024-01-15T10:30:00Z).',
    'Upgrade from v1.2.3 to 10.15.7, or 2.14.1023.4.',
    'Servers 192.168.100.200 and 10.0.0.1.',
    'It costs $1,299.99 or 1 234 567,89 EUR; 12 345 678 people; 1.234.567 units.',
    'From 1999-2005 and 1990 2000 2010.',
    'Pi is 3.14159265358979, position 52.5200 13.4050.',
    'ISBN 978-3-16-148410-0, order 12345678901, id 4111 1111 1111 1112.',
    'Meet at 12:30 555 1234 or ext 555-1234.',
    'Numbers 1 2 3 4 5 6 7 8 9 10 and call5551234567 and 555 123 4567ext.',
  ];
  it.each(notPhones)('leaves numbers that are not phones: %s', (text) => {
    expect(only('phone').redact(text)).toEqual({ text, findings: {} });
  });
});

describe('credit_card', () => {
  const cards = ['4111 1111 1111 1111', '4111-1111-1111-1111', '5555555555554444', '378282246310005', '3782 822463 10005', '6011-1111-1111-1117', '4012888888881881', '4222222222222'];
  it.each(cards)('replaces %s (Luhn-valid)', (card) => {
    expect(luhnOk(card)).toBe(true);
    const r = only('credit_card').redact(`Pay with ${card}, thanks`);
    expect(r.text).toBe('Pay with [CREDIT_CARD], thanks');
    expect(r.findings).toEqual({ credit_card: 1 });
  });

  it('leaves numbers whose Luhn digit is wrong, however card-like', () => {
    const bad = ['4111 1111 1111 1112', '4111-1111-1111-1113', '5555555555554445', '1234 5678 9012 3456', '378282246310006'];
    for (const n of bad) expect(luhnOk(n)).toBe(false);
    const text = `Numbers: ${bad.join(', ')}.`;
    expect(only('credit_card').redact(text)).toEqual({ text, findings: {} });
  });

  it('leaves Luhn-valid numbers that are not cards: other issuers, glued to words, decimals, mixed separators', () => {
    // A 13-digit millisecond timestamp and a Discord-style id start with 1; an ICCID with 89.
    const ids = [withLuhn('171800000000'), withLuhn('123456789012345678'), withLuhn('894450010219830482'), withLuhn('70000000000000'), withLuhn('90000000000000')];
    for (const n of ids) expect(luhnOk(n)).toBe(true);
    const text = `ts ${ids.join(', ')}, x4111111111111111, 4111111111111111ab, 0.4111111111111111, 4111 1111-1111 1111`;
    expect(only('credit_card').redact(text)).toEqual({ text, findings: {} });
  });

  it('finds a card inside a longer run of numbers', () => {
    expect(only('credit_card').redact('Ref 12 4111 1111 1111 1111 99').text).toBe('Ref 12 [CREDIT_CARD] 99');
  });
});

describe('iban', () => {
  const ibans = ['DE89 3704 0044 0532 0130 00', 'DE89370400440532013000', 'GB82 WEST 1234 5698 7654 32', 'FR14 2004 1010 0505 0001 3M02 606', 'NO93 8601 1117 947', 'CH9300762011623852957'];
  it.each(ibans)('replaces %s (mod-97 = 1)', (iban) => {
    expect(ibanOk(iban)).toBe(true);
    const r = only('iban').redact(`IBAN: ${iban}.`);
    expect(r.text).toBe('IBAN: [IBAN].');
    expect(r.findings).toEqual({ iban: 1 });
  });

  it('leaves a bad checksum, a wrong length, an unknown country, lower case', () => {
    const bad = ['DE89 3704 0044 0532 0130 01', 'GB82 WEST 1234 5698 7654 33', 'DE89 3704 0044 0532 0130 0', 'ZZ12 3456 7890 1234 56', 'de89370400440532013000'];
    for (const i of bad.slice(0, 2)) expect(ibanOk(i)).toBe(false);
    const text = bad.join(' / ');
    expect(only('iban').redact(text)).toEqual({ text, findings: {} });
  });

  it('stops at the registry length even when more groups follow', () => {
    expect(only('iban').redact('DE89 3704 0044 0532 0130 00 12 EUR').text).toBe('[IBAN] 12 EUR');
  });
});

describe('secret', () => {
  it.each(Object.entries(TOKENS))('replaces a %s token', (_name, token) => {
    const r = only('secret').redact(`key=(${token}) ok`);
    expect(r.text).toBe('key=([SECRET]) ok');
    expect(r.findings).toEqual({ secret: 1 });
  });

  it('replaces Bearer and Basic credentials, keeping the scheme', () => {
    const r = only('secret').redact('Authorization: Bearer abcDEF123456ghiJKL789.mno~pq+/== and basic dXNlcjpwYXNzd29yZA==');
    expect(r.text).toBe('Authorization: Bearer [SECRET] and basic [SECRET]');
    expect(r.findings).toEqual({ secret: 2 });
  });

  it('replaces values assigned to secret-named keys, in code, config and JSON', () => {
    const cases: Array<[string, string]> = [
      ['password=hunter2', 'password=[SECRET]'],
      ['DB_PASSWORD=s3cr3t!', 'DB_PASSWORD=[SECRET]'],
      ['SMTP_PASS=abc123', 'SMTP_PASS=[SECRET]'],
      ['https://x.test/?api_key=abc123&q=1', 'https://x.test/?api_key=[SECRET]&q=1'],
      ['password = "hunter two"', 'password = "[SECRET]"'],
      ["secret: 'abc'", "secret: '[SECRET]'"],
      ['{"client_secret":"xyz","n":1}', '{"client_secret":"[SECRET]","n":1}'],
      ['{"token": "t0k"}', '{"token": "[SECRET]"}'],
      ['{\\"password\\": \\"s3cr3t\\"}', '{\\"password\\": \\"[SECRET]\\"}'],
      ['Password: hunter22.', 'Password: [SECRET].'],
      ['X-Api-Key: abc123def456', 'X-Api-Key: [SECRET]'],
      ['aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', 'aws_secret_access_key = [SECRET]'],
      ['postgres://admin:s3cr%40t@db.example.com:5432/app', 'postgres://admin:[SECRET]@db.example.com:5432/app'],
      [`PRIVATE_KEY=${PEM_BODY.join('')}`, 'PRIVATE_KEY=[SECRET]'],
    ];
    for (const [input, output] of cases) expect(only('secret').redact(input), input).toEqual({ text: output, findings: { secret: 1 } });
  });

  it('leaves prose, code and references that only mention secrets', () => {
    const texts = [
      'the sk-learn library, sk-this-is-a-long-hyphenated-word, task-1234',
      'interface User { password: string; token?: string }',
      'const token = getToken(); if (password == input) return; x => password',
      'password: process.env.DB_PASSWORD, token = self.token, PWD=/home/user',
      'max_tokens=100, tokenizer=o200k, passwordless=true, secret=false, password=null',
      'password=${DB_PASSWORD} token=%s secret=**** api_key=<your key> password="{{pw}}"',
      'Bearer tokens are short-lived; the bearer of this letter; Basic authentication; Bearer abcdefghijklmnopqrstuvwxyz',
      'https://example.com:8080/path and ssh://git@github.com/x',
      'Reset your password: follow the link.',
      'AKIA1234 ghp_short AIzaTooShort',
    ];
    for (const text of texts) expect(only('secret').redact(text), text).toEqual({ text, findings: {} });
  });
});

describe('jwt', () => {
  it('replaces tokens whose header is a JSON object with alg, signed, unsecured or encrypted', () => {
    const signed = jwt({ alg: 'HS256', typ: 'JWT' });
    const unsecured = jwt({ alg: 'none' }, { sub: 'x' }, '');
    const jwe = `${b64url({ alg: 'RSA-OAEP', enc: 'A256GCM' })}.${b64url('key-bytes')}.${b64url('iv')}.${b64url('ciphertext')}.${b64url('tag')}`;
    const r = only('jwt').redact(`a ${signed}. b ${unsecured} c "${jwe}"`);
    expect(r.text).toBe('a [JWT]. b [JWT] c "[JWT]"');
    expect(r.findings).toEqual({ jwt: 3 });
  });

  it('leaves three dotted segments whose header is not JSON, or has no alg', () => {
    const notJson = `${b64url('{alg: HS256}')}.${b64url({ sub: 1 })}.c2ln`;
    const noAlg = jwt({ typ: 'JWT' });
    const notObject = `${b64url(['alg'])}.${b64url({ sub: 1 })}.c2ln`;
    // These two pass the cheap checks (braces, "alg": "…") and fail only as JSON.
    const trailingComma = `${b64url('{"alg":"HS256",}')}.${b64url({ sub: 1 })}.c2ln`;
    const extraBrace = `${b64url('{"alg":"HS256"}}')}.${b64url({ sub: 1 })}.c2ln`;
    const text = `${notJson} ${noAlg} ${notObject} ${trailingComma} ${extraBrace} e30.e30 not.a.jwt example.com.au`;
    expect(only('jwt').redact(text)).toEqual({ text, findings: {} });
  });

  it('past its budget of failed header parses, redacts near-headers unparsed rather than miss a token', () => {
    const near = `${b64url('{"alg":"x",}')}.e30.c2ln`;
    const real = jwt({ alg: 'HS256' });
    const few = Array.from({ length: 100 }, () => near).join(' ');
    expect(only('jwt').redact(`${few} ${real}`).text).toBe(`${few} [JWT]`);
    const many = Array.from({ length: 300 }, () => near).join(' ');
    const r = only('jwt').redact(`${many} ${real}`);
    expect(r.text).toBe([...Array<string>(256).fill(near), ...Array<string>(300 - 256 + 1).fill('[JWT]')].join(' '));
    expect(r.findings).toEqual({ jwt: 300 - 256 + 1 });
  });
});

describe('private_key', () => {
  it.each(['RSA PRIVATE KEY', 'EC PRIVATE KEY', 'OPENSSH PRIVATE KEY', 'ENCRYPTED PRIVATE KEY', 'PRIVATE KEY', 'PGP PRIVATE KEY BLOCK'])('replaces a whole %s block', (label) => {
    const r = only('private_key').redact(`Here:\n${pem(label)}\nThanks.`);
    expect(r.text).toBe('Here:\n[PRIVATE_KEY]\nThanks.');
    expect(r.findings).toEqual({ private_key: 1 });
  });

  it('replaces a block written on one line, and a legacy encrypted block with headers', () => {
    const legacy = ['Proc-Type: 4,ENCRYPTED', 'DEK-Info: AES-128-CBC,2A1F7B6F5A0C4B8E', '', ...PEM_BODY];
    const r = only('private_key').redact(`${pem('RSA PRIVATE KEY').replace(/\n/g, ' ')} and ${pem('RSA PRIVATE KEY', legacy)}`);
    expect(r.text).toBe('[PRIVATE_KEY] and [PRIVATE_KEY]');
  });

  it('without an END line, replaces the header and the base64 lines that follow, not the prose', () => {
    const text = `-----BEGIN PRIVATE KEY-----\n${PEM_BODY.slice(0, 3).join('\n')}\nAAAA==\n\nI pasted it by mistake.`;
    expect(only('private_key').redact(text).text).toBe('[PRIVATE_KEY]\n\nI pasted it by mistake.');
  });

  it('leaves public keys and certificates', () => {
    const text = `${pem('PUBLIC KEY')}\n${pem('CERTIFICATE')}`;
    expect(only('private_key').redact(text)).toEqual({ text, findings: {} });
  });
});

describe('order and scope', () => {
  const sample = [
    'Mail a@example.com',
    'call +44 20 7946 0958',
    'card 4111 1111 1111 1111',
    'iban DE89 3704 0044 0532 0130 00',
    `key ${TOKENS.openai}`,
    `jwt ${jwt({ alg: 'HS256' })}`,
    pem('RSA PRIVATE KEY'),
  ].join('\n');

  it('redacts every kind at once, each counted', () => {
    const r = all.redact(sample);
    expect(r.text).toBe(['Mail [EMAIL]', 'call [PHONE]', 'card [CREDIT_CARD]', 'iban [IBAN]', 'key [SECRET]', 'jwt [JWT]', '[PRIVATE_KEY]'].join('\n'));
    expect(r.findings).toEqual({ email: 1, phone: 1, credit_card: 1, iban: 1, secret: 1, jwt: 1, private_key: 1 });
  });

  it('redacts only the kinds asked for', () => {
    for (const kind of ALL) {
      const r = only(kind).redact(sample);
      expect(r.findings).toEqual({ [kind]: 1 });
      expect(r.text.match(/\[[A-Z_]+\]/g)).toEqual([placeholder(kind)]);
    }
  });

  it('never lets a broader rule eat part of a more specific kind', () => {
    // Digits in a key body, a JWT, an IBAN and an address must not become phones or cards.
    const digitsKey = pem('PRIVATE KEY', ['MIIBVgIBADANBgkqhkiG9w0BAQEFAASCAUAwggE8AgEAAkEA', '555 123 4567 4111 1111 1111 1111', 'AgMBAAE=']);
    const digitsJwt = jwt({ alg: 'HS256' }, { tel: '+1 555 123 4567' }, '555-123-4567.4111-1111-1111-1111');
    const text = `${digitsKey}\n${digitsJwt}\nNO93 8601 1117 947\n5551234567@example.com\nBearer ${jwt({ alg: 'RS256' })}\npassword=${TOKENS.github}`;
    const r = all.redact(text);
    expect(r.text).toBe('[PRIVATE_KEY]\n[JWT]\n[IBAN]\n[EMAIL]\nBearer [JWT]\npassword=[SECRET]');
    expect(r.findings).toEqual({ private_key: 1, jwt: 2, iban: 1, email: 1, secret: 1 });
    // Asked only for phones and cards, the other kinds stay intact rather than half-redacted.
    const narrow = createRedactor(['phone', 'credit_card']).redact(text);
    expect(narrow).toEqual({ text, findings: {} });
  });

  it('does not let the guessing secret rules hide an address from the email rule', () => {
    expect(createRedactor(['email']).redact('password=a@example.com').text).toBe('password=[EMAIL]');
  });

  it('re-runs until nothing is left, so a redaction that frees a neighbour still gets it', () => {
    // The '+' right after a digit reads as arithmetic until the first number is a placeholder.
    expect(only('phone').redact('0151 23456789+44 7946 0958')).toEqual({ text: '[PHONE][PHONE]', findings: { phone: 2 } });
    expect(all.redact('x@example.co+1 555 123 4567').text).toBe('[EMAIL][PHONE]');
  });

  it('is idempotent: its output redacts to itself with no findings', () => {
    const once = all.redact(`${sample}\npassword="${TOKENS.stripe} [x]" Bearer ${TOKENS.slack} postgres://u:p4ss@h.example.com`);
    expect(all.redact(once.text)).toEqual({ text: once.text, findings: {} });
  });

  it('reports counts only, never values', () => {
    const r = all.redact(sample);
    for (const v of Object.values(r.findings)) expect(typeof v).toBe('number');
    const json = JSON.stringify(r.findings);
    for (const value of ['a@example.com', '7946', '4111', 'DE89', TOKENS.openai, 'eyJ', 'MII']) expect(json).not.toContain(value);
  });
});

describe('mergeFindings', () => {
  it('sums per kind without changing its arguments', () => {
    const a = { email: 1, phone: 2 };
    const b = { phone: 3, jwt: 1 };
    expect(mergeFindings(a, b)).toEqual({ email: 1, phone: 5, jwt: 1 });
    expect(a).toEqual({ email: 1, phone: 2 });
    expect(b).toEqual({ phone: 3, jwt: 1 });
    expect(mergeFindings({}, {})).toEqual({});
  });
});

// --- Request bodies -------------------------------------------------------------------------------

const PII = 'reach me at a@example.com';
const DONE = 'reach me at [EMAIL]';
const emails = createRedactor(['email']);

function visited(endpoint: TextEndpoint, body: Record<string, unknown>): string[] {
  const seen: string[] = [];
  const before = structuredClone(body);
  mapTexts(endpoint, body, (t) => {
    seen.push(t);
    return undefined;
  });
  expect(body).toEqual(before); // returning undefined leaves every field as it was
  return seen;
}

describe('mapTexts and redactBody: chat completions', () => {
  const body = () => ({
    model: 'a@example.com-model',
    messages: [
      { role: 'system', content: `sys ${PII}` },
      {
        role: 'user',
        content: [
          { type: 'text', text: `part ${PII}` },
          { type: 'image_url', image_url: { url: 'https://img.example.com/a@example.com.png' } },
          { type: 'input_audio', input_audio: { data: 'a@example.com', format: 'wav' } },
        ],
      },
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'lookup', arguments: `{"email":"a@example.com"}` } }] },
      { role: 'tool', tool_call_id: 'call_1', content: `tool ${PII}` },
      { role: 'tool', tool_call_id: 'call_2', content: [{ type: 'text', text: `tool part ${PII}` }] },
      { role: 'assistant', content: 'ok', function_call: { name: 'legacy', arguments: '{"cc":"a@example.com"}' }, tool_calls: [{ id: 'c3', type: 'custom', custom: { name: 'sql', input: 'where a@example.com' } }] },
    ],
    tools: [{ type: 'function', function: { name: 'lookup', description: `Finds ${PII}`, parameters: { type: 'object' } } }],
    metadata: { owner: 'a@example.com' },
  });

  it('visits message content, text parts, tool call arguments and tool results, nothing else', () => {
    expect(visited('chat.completions', body())).toEqual([`sys ${PII}`, `part ${PII}`, '{"email":"a@example.com"}', `tool ${PII}`, `tool part ${PII}`, 'ok', 'where a@example.com', '{"cc":"a@example.com"}']);
  });

  it('redacts them in place and sums the findings', () => {
    const b = body();
    expect(redactBody('chat.completions', b, emails)).toEqual({ email: 7 });
    const expected = body();
    expected.messages[0]!.content = `sys ${DONE}`;
    (expected.messages[1]!.content as Array<{ text?: string }>)[0]!.text = `part ${DONE}`;
    (expected.messages[2]!.tool_calls![0] as { function: { arguments: string } }).function.arguments = '{"email":"[EMAIL]"}';
    expected.messages[3]!.content = `tool ${DONE}`;
    (expected.messages[4]!.content as Array<{ text?: string }>)[0]!.text = `tool part ${DONE}`;
    expected.messages[5]!.function_call!.arguments = '{"cc":"[EMAIL]"}';
    (expected.messages[5]!.tool_calls![0] as { custom: { input: string } }).custom.input = 'where [EMAIL]';
    expect(b).toEqual(expected);
  });
});

describe('mapTexts and redactBody: responses', () => {
  const body = () => ({
    model: 'gpt-5',
    instructions: `inst ${PII}`,
    input: [
      { role: 'user', content: `easy ${PII}` },
      {
        type: 'message',
        role: 'user',
        content: [
          { type: 'input_text', text: `in ${PII}` },
          { type: 'input_image', image_url: 'https://img.example.com/a@example.com.png' },
          { type: 'input_file', file_id: 'file-a@example.com' },
        ],
      },
      { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: `out ${PII}`, annotations: [] }] },
      { type: 'function_call', call_id: 'c1', name: 'lookup', arguments: '{"to":"a@example.com"}' },
      { type: 'function_call_output', call_id: 'c1', output: `result ${PII}` },
      { type: 'function_call_output', call_id: 'c2', output: [{ type: 'input_text', text: `parts ${PII}` }] },
      { type: 'custom_tool_call', call_id: 'c3', name: 'sql', input: 'where a@example.com' },
      { type: 'custom_tool_call_output', call_id: 'c3', output: `rows ${PII}` },
      { type: 'reasoning', id: 'rs_1', summary: [{ type: 'summary_text', text: 'a@example.com' }] },
    ],
    tools: [{ type: 'function', name: 'lookup', description: PII, parameters: {} }],
  });

  it('visits instructions and every text item, nothing else', () => {
    expect(visited('responses', body())).toEqual([`inst ${PII}`, `easy ${PII}`, `in ${PII}`, `out ${PII}`, '{"to":"a@example.com"}', `result ${PII}`, `parts ${PII}`, 'where a@example.com', `rows ${PII}`]);
  });

  it('redacts them in place', () => {
    const b = body();
    expect(redactBody('responses', b, emails)).toEqual({ email: 9 });
    const s = JSON.stringify(b);
    expect(s.match(/a@example\.com/g)).toHaveLength(4); // the image, the file id, the reasoning item, the tool definition
    expect(b.instructions).toBe(`inst ${DONE}`);
    expect(b.input[4]).toEqual({ type: 'function_call_output', call_id: 'c1', output: `result ${DONE}` });
  });

  it('visits a plain string input', () => {
    const b: Record<string, unknown> = { model: 'gpt-5', input: PII };
    expect(redactBody('responses', b, emails)).toEqual({ email: 1 });
    expect(b).toEqual({ model: 'gpt-5', input: DONE });
  });
});

describe('mapTexts and redactBody: embeddings and moderations', () => {
  it('embeddings: a string, each string of an array; token arrays untouched', () => {
    const a: Record<string, unknown> = { model: 'text-embedding-3-small', input: PII };
    expect(redactBody('embeddings', a, emails)).toEqual({ email: 1 });
    expect(a.input).toBe(DONE);
    const b: Record<string, unknown> = { model: 'm', input: [PII, 'plain', PII] };
    expect(redactBody('embeddings', b, emails)).toEqual({ email: 2 });
    expect(b.input).toEqual([DONE, 'plain', DONE]);
    const tokens = { model: 'm', input: [[1, 2, 3], [4]] };
    expect(visited('embeddings', tokens)).toEqual([]);
    expect(visited('embeddings', { input: [5551234567, 4111111111111111] })).toEqual([]);
  });

  it('moderations: a string, strings, text parts; image parts untouched', () => {
    const a: Record<string, unknown> = { input: [PII, PII] };
    expect(redactBody('moderations', a, emails)).toEqual({ email: 2 });
    expect(a.input).toEqual([DONE, DONE]);
    const b = { model: 'omni-moderation-latest', input: [{ type: 'text', text: PII }, { type: 'image_url', image_url: { url: 'https://x.example.com/a@example.com' } }] };
    expect(redactBody('moderations', b, emails)).toEqual({ email: 1 });
    expect(b.input).toEqual([{ type: 'text', text: DONE }, { type: 'image_url', image_url: { url: 'https://x.example.com/a@example.com' } }]);
    const c: Record<string, unknown> = { input: PII };
    redactBody('moderations', c, emails);
    expect(c.input).toBe(DONE);
  });
});

describe('mapTexts on malformed bodies', () => {
  const malformed: Array<[TextEndpoint, unknown]> = [
    ['chat.completions', { messages: 'hi a@example.com' }],
    ['chat.completions', { messages: [null, 1, 'a@example.com', [], { content: 5 }, { content: [null, 'a@example.com', { type: 'text', text: 7 }, { type: 'text' }] }] }],
    ['chat.completions', { messages: [{ role: 'assistant', tool_calls: 'x' }, { tool_calls: [null, { function: 'a@example.com' }, { function: { arguments: { to: 'a@example.com' } } }] }] }],
    ['responses', { input: 42, instructions: ['a@example.com'] }],
    ['responses', { input: [null, 'a@example.com', { type: 'message', content: { text: 'a@example.com' } }, { type: 'function_call_output', output: { x: 'a@example.com' } }, { type: 'function_call', arguments: null }] }],
    ['embeddings', { input: { text: 'a@example.com' } }],
    ['embeddings', { input: [null, { a: 'a@example.com' }, [1, 'a@example.com']] }],
    ['moderations', { input: [null, 3, { type: 'text', text: null }, { type: 'image_url', text: 'a@example.com' }] }],
    ['moderations', {}],
  ];
  it.each(malformed)('%s %j: no throw, nothing changed', (endpoint, body) => {
    const b = body as Record<string, unknown>;
    const before = structuredClone(b);
    expect(() => redactBody(endpoint, b, all)).not.toThrow();
    expect(b).toEqual(before);
  });

  it('does not throw on a body that is not an object', () => {
    for (const b of [null, undefined, 'text', 3, []]) expect(() => redactBody('chat.completions', b as unknown as Record<string, unknown>, all)).not.toThrow();
  });
});

// --- Cost -----------------------------------------------------------------------------------------

describe('linear time on hostile input', () => {
  const MB = 1 << 20;
  const fill = (unit: string) => unit.repeat(Math.ceil(MB / unit.length)).slice(0, MB);
  const hostile: Record<string, string> = {
    digits: fill('1'),
    'spaced digits': fill('1 '),
    'dashed digits': fill('12-'),
    'dotted digits': fill('1.'),
    'plus numbers': fill('+1 '),
    parens: fill('(1) '),
    at: fill('@'),
    'local@': fill('a@'),
    'almost addresses': fill('a@b.'),
    dashes: fill('-'),
    dots: fill('.'),
    base64: fill('eyJhbGciOiJIUzI1NiJ9'),
    'dotted base64': fill('eyJhbGciOiJIUzI1NiJ9.'),
    'near JWT headers': fill(`${b64url('{"alg":"}')}.a.b `),
    'password=': fill('password='),
    'password="': fill('password="'),
    'pass="': fill('pass="'),
    'password: ': fill('token: a'),
    'BEGIN without END': fill('-----BEGIN PRIVATE KEY-----\n'),
    'many labels': Array.from({ length: 30000 }, (_, i) => `-----BEGIN K${i} PRIVATE KEY-----`).join(''),
    'provider prefixes': fill('sk-ghp_AKIA'),
    bearer: fill('Bearer '),
    urls: fill('a://b:'),
    'IBAN starts': fill('DE89 '),
    'value then dots': 'password=a'.repeat(50000) + '.'.repeat(MB / 2),
  };
  // Linear, not a time budget: an eighth of the input must take about an eighth of the time. A
  // quadratic pattern is ~64 times slower on the whole, whatever the machine's speed.
  const timed = (text: string) => {
    const t0 = performance.now();
    const r = all.redact(text);
    return { ms: performance.now() - t0, r };
  };
  it.each(Object.keys(hostile))('%s (1 MB) costs time in proportion to its length, and settles in one redaction', (name) => {
    const text = hostile[name]!;
    const part = timed(text.slice(0, text.length >> 3));
    const whole = timed(text);
    expect(whole.ms).toBeLessThan(24 * Math.max(part.ms, 5));
    // Hostile runs are where one redaction could expose the next candidate behind it.
    expect(all.redact(whole.r.text).findings).toEqual({});
  });
});
