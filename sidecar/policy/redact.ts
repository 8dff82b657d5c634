// Finds personal data and secrets in the text of a request body and replaces each with a typed
// placeholder (or only counts them, so the call can be refused). It runs on every call of every
// app, so every rule is a hand-written scan or a regex anchored by a one-character lookbehind: the
// work is linear in the text, with no backtracking that a hostile body could make quadratic.
//
// One pass runs the detectors from the most to the least specific (private key, JWT, secret,
// email, IBAN, card, phone). What a detector claims is hidden from the later ones (overwritten
// with NULs, which every rule treats as a boundary, as it does a placeholder's brackets), so a
// key or a token is never half-eaten by the phone rule. Fixed formats (keys, JWTs, provider
// tokens, addresses, IBANs, cards) are detected even when the route does not redact them, only to
// shield them: a route that redacts phones must not turn the digits of an IBAN into [PHONE].
//
// What is caught, and what is knowingly not:
// - email: ASCII domain with an alphabetic (or xn--) TLD; the local part may hold Latin, Greek and
//   Cyrillic letters. Not: quoted local parts, IP-literal domains, Unicode TLDs.
// - phone: `+` numbers (7-15 digits, separators optional) and national numbers written with
//   separators (space, '-', '.', one parenthesised area code). Not: unseparated national numbers
//   (indistinguishable from ids), 7-8 digit numbers in two groups (`555-1234`), a number that
//   touches other digits across a space so the run exceeds 15 digits, 3-3-3 groups (read as
//   thousands: `612 345 678`). Skipped as not phones: ISO/European dates, year lists, thousands,
//   decimals, IPv4 addresses, versions, numbers glued to letters, times, `,` or `%`.
// - credit_card: 13-19 digits starting 2-6 (Visa, Mastercard, Amex, Discover, JCB, Diners,
//   UnionPay, Maestro), contiguous or in groups (4, then 4-6, last 1-6) split by one space or '-',
//   with a valid Luhn digit. Airline/fuel/telecom numbers (1, 7, 8, 9) and ids such as
//   millisecond timestamps or snowflakes are left; about 1 in 10 other such numbers pass Luhn.
// - iban: upper-case, compact or in groups of 4, with the registry length for its country and a
//   mod-97 remainder of 1. Not: lower-case or dash-separated IBANs.
// - secret: provider tokens by their documented prefixes and lengths; `Bearer`/`Basic`
//   credentials of 16+ characters mixing letter cases or digits; passwords in `scheme://user:pw@`;
//   values assigned to keys ending in password/passwd/passphrase/secret/secret_key/api_key/
//   access_key/private_key/token/credential(s) (or `_pass`, `_pwd`): quoted values always;
//   unquoted ones after a tight `=` (env files, query strings); after `:` or a spaced `=` only
//   values of 6+ characters holding a digit or a symbol, which keeps `password: string`,
//   `token = getToken()` and prose out but misses `password: letmein`. References (`$VAR`,
//   `%s`, `***`, `{{x}}`, `<x>`) and true/false/null are left. These guesses run only when the
//   route redacts secrets. Not: credentials named otherwise (`pin=`, `key=`), unknown providers.
// - jwt: header.payload[.signature] (and 5-part JWE) whose header decodes to a JSON object with a
//   string `alg`. Not: a header whose JSON starts with whitespace (its base64 does not start
//   with 'e', which is how candidates are picked).
// - private_key: a PEM `-----BEGIN ... PRIVATE KEY-----` block through its END line; without an
//   END line, through the base64 and header lines that follow it.
import { Buffer } from 'node:buffer';

export type RedactionKind = 'email' | 'phone' | 'credit_card' | 'iban' | 'secret' | 'jwt' | 'private_key';
/** How many of each kind were found: counts only, never values. */
export type Findings = Partial<Record<RedactionKind, number>>;

export interface Redactor {
  readonly kinds: readonly RedactionKind[];
  redact(text: string): { text: string; findings: Findings };
}

export type TextEndpoint = 'chat.completions' | 'responses' | 'embeddings' | 'moderations';

/** Most specific first: the order in which detectors claim text. */
const ORDER: readonly RedactionKind[] = ['private_key', 'jwt', 'secret', 'email', 'iban', 'credit_card', 'phone'];

export function placeholder(kind: RedactionKind): string {
  return `[${kind.toUpperCase()}]`;
}

const PLACEHOLDER = /\[(?:EMAIL|PHONE|CREDIT_CARD|IBAN|SECRET|JWT|PRIVATE_KEY)\]/;

// --- Characters ---------------------------------------------------------------------------------
// charCodeAt past either end is NaN, which every test below rejects: no bounds checks needed.

const isDigit = (c: number) => c >= 48 && c <= 57;
const isUpper = (c: number) => c >= 65 && c <= 90;
const isLower = (c: number) => c >= 97 && c <= 122;
const isAlnum = (c: number) => isDigit(c) || isUpper(c) || isLower(c);
const isWord = (c: number) => isAlnum(c) || c === 95;
/** base64url, and the characters of most provider tokens. */
const isToken = (c: number) => isWord(c) || c === 45;
const isSpace = (c: number) => c === 32 || (c >= 9 && c <= 13);

const SP = 32;
const DQUOTE = 34;
const PERCENT = 37;
const SQUOTE = 39;
const LPAREN = 40;
const RPAREN = 41;
const ASTERISK = 42;
const PLUS = 43;
const COMMA = 44;
const MINUS = 45;
const DOT = 46;
const SLASH = 47;
const COLON = 58;
const LT = 60;
const EQ = 61;
const GT = 62;
const BACKSLASH = 92;
const BACKTICK = 96;
const DOLLAR = 36;
const BANG = 33;

/** Spans found by a detector: flat [start, end) pairs, ascending and disjoint. */
type Spans = number[];

// --- Private keys -------------------------------------------------------------------------------

const PEM_BEGIN = '-----BEGIN ';
const PEM_END = '-----END ';
const PRIVATE_LABEL = /(?:^| )PRIVATE KEY(?: BLOCK)?$/;

/** After `-----BEGIN ` or `-----END `: the index past the closing dashes of a private-key label. */
function privateLabelEnd(t: string, from: number): number {
  let j = from;
  const limit = Math.min(t.length, from + 64);
  while (j < limit) {
    const c = t.charCodeAt(j);
    if (!(isUpper(c) || isDigit(c) || c === SP)) break;
    j++;
  }
  if (!t.startsWith('-----', j) || !PRIVATE_LABEL.test(t.slice(from, j))) return -1;
  return j + 5;
}

function isBase64Token(t: string, s: number, e: number): boolean {
  for (let i = s; i < e; i++) {
    const c = t.charCodeAt(i);
    if (!(isAlnum(c) || c === PLUS || c === SLASH || c === EQ)) return false;
  }
  // Short base64-looking words are prose; a key's lines are 64 wide, its last one padded or long.
  return e - s >= 16 || t.charCodeAt(e - 1) === EQ;
}

/** Where the body of a key with no END line stops: after its last base64 or `Name: value` line. */
function pemBodyEnd(t: string, from: number): number {
  const n = t.length;
  let end = from;
  let p = from;
  while (p < n) {
    while (p < n && isSpace(t.charCodeAt(p))) p++;
    let q = p;
    while (q < n && !isSpace(t.charCodeAt(q))) q++;
    if (q === p) break;
    if (isBase64Token(t, p, q)) {
      end = p = q;
      continue;
    }
    // Encrypted legacy keys carry `Proc-Type:` and `DEK-Info:` lines before the base64.
    if (t.charCodeAt(q - 1) === COLON && /^[A-Za-z][A-Za-z-]*:$/.test(t.slice(p, q)) && atLineStart(t, p)) {
      let eol = t.indexOf('\n', q);
      if (eol < 0) eol = n;
      while (eol > q && isSpace(t.charCodeAt(eol - 1))) eol--;
      end = p = eol;
      continue;
    }
    break;
  }
  return end;
}

function atLineStart(t: string, p: number): boolean {
  let i = p - 1;
  while (i >= 0 && (t.charCodeAt(i) === SP || t.charCodeAt(i) === 9)) i--;
  return i < 0 || t.charCodeAt(i) === 10 || t.charCodeAt(i) === 13;
}

function findPrivateKeys(t: string, out: Spans): void {
  // END markers are looked up with one forward cursor, so many BEGINs without an END stay linear.
  let endScan = 0;
  let endAt = -1;
  let endStop = -1;
  let noMoreEnds = false;
  const nextEnd = (from: number): number => {
    while (!noMoreEnds) {
      if (endAt >= from) return endStop;
      const p = t.indexOf(PEM_END, Math.max(from, endScan));
      if (p < 0) {
        noMoreEnds = true;
        break;
      }
      endScan = p + 1;
      const stop = privateLabelEnd(t, p + PEM_END.length);
      if (stop >= 0) {
        endAt = p;
        endStop = stop;
      }
    }
    return -1;
  };
  let i = 0;
  for (;;) {
    const b = t.indexOf(PEM_BEGIN, i);
    if (b < 0) return;
    const head = privateLabelEnd(t, b + PEM_BEGIN.length);
    if (head < 0) {
      i = b + 1;
      continue;
    }
    const e = nextEnd(head);
    const stop = e >= 0 ? e : pemBodyEnd(t, head);
    out.push(b, stop);
    i = stop;
  }
}

// --- JWTs ---------------------------------------------------------------------------------------

const MAX_JWT_HEADER = 8192;
// JSON.parse costs microseconds when it throws, so a body of crafted near-headers could cost
// seconds. Past this many failures in one text, a header that passes the cheap checks is taken
// for a JWT unparsed: the budget can cost precision on hostile input, never recall.
const JWT_PARSE_FAILURES = 256;

interface JwtScan {
  failures: number;
}

function jwtHeader(seg: string, scan: JwtScan): boolean {
  if (seg.length > MAX_JWT_HEADER || seg.length % 4 === 1) return false;
  const json = Buffer.from(seg, 'base64url').toString('utf8').trim();
  if (json.charCodeAt(0) !== 123 || json.charCodeAt(json.length - 1) !== 125 || !/"alg"\s*:\s*"/.test(json)) return false;
  if (scan.failures >= JWT_PARSE_FAILURES) return true;
  try {
    const header: unknown = JSON.parse(json);
    if (typeof header === 'object' && header !== null && typeof (header as { alg?: unknown }).alg === 'string') return true;
  } catch {
    // counted below
  }
  scan.failures++;
  return false;
}

function findJwts(t: string, out: Spans): void {
  const n = t.length;
  const scan: JwtScan = { failures: 0 };
  let i = 0;
  while (i < n) {
    if (!isToken(t.charCodeAt(i))) {
      i++;
      continue;
    }
    let r = i + 1;
    while (r < n && isToken(t.charCodeAt(r))) r++;
    // A JSON header starts with '{', which base64 always encodes as 'e'.
    const end = t.charCodeAt(i) === 101 && t.charCodeAt(r) === DOT ? jwtEnd(t, i, r, scan) : -1;
    if (end > 0) out.push(i, end);
    i = end > 0 ? end : r;
  }
}

/** The end of a JWS (3 parts) or JWE (5 parts) whose first segment is [s, r), or -1. */
function jwtEnd(t: string, s: number, r: number, scan: JwtScan): number {
  const n = t.length;
  let parts = 1;
  let end = r;
  let lastEmpty = false;
  let payloadLength = 0;
  while (parts < 5 && t.charCodeAt(end) === DOT) {
    let q = end + 1;
    while (q < n && isToken(t.charCodeAt(q))) q++;
    parts++;
    if (parts === 2) payloadLength = q - end - 1;
    lastEmpty = q === end + 1;
    end = q;
    if (lastEmpty) break;
  }
  if (parts < 3 || payloadLength === 0) return -1;
  // A dot after a complete token ends the sentence; an unsecured JWT (`alg: none`) keeps its own.
  if (lastEmpty && parts > 3) end--;
  return jwtHeader(t.slice(s, r), scan) ? end : -1;
}

// --- Secrets ------------------------------------------------------------------------------------

interface TokenRule {
  prefix: string;
  /** Characters allowed after the prefix. */
  body: (c: number) => boolean;
  min: number;
  max: number;
  /** A further check that keeps hyphenated prose out. */
  check?: (t: string, s: number, e: number) => boolean;
}

const hasDigitOrUpper = (t: string, s: number, e: number) => {
  for (let i = s; i < e; i++) {
    const c = t.charCodeAt(i);
    if (isDigit(c) || isUpper(c)) return true;
  }
  return false;
};
const hasDigit = (t: string, s: number, e: number) => {
  for (let i = s; i < e; i++) if (isDigit(t.charCodeAt(i))) return true;
  return false;
};

// Published formats: OpenAI and Anthropic `sk-` keys (incl. sk-proj-, sk-ant-api03-), AWS access
// key ids, GitHub tokens (classic: 36 characters), GitLab personal tokens, Slack tokens, Stripe
// secret and restricted keys, Google API keys.
const TOKEN_RULES: readonly TokenRule[] = [
  { prefix: 'sk-', body: isToken, min: 20, max: 400, check: hasDigitOrUpper },
  ...['sk_live_', 'sk_test_', 'rk_live_', 'rk_test_'].map((prefix) => ({ prefix, body: isAlnum, min: 16, max: 256 })),
  ...['AKIA', 'ASIA'].map((prefix) => ({ prefix, body: (c: number) => isUpper(c) || isDigit(c), min: 16, max: 16 })),
  ...['ghp_', 'gho_', 'ghu_', 'ghs_', 'ghr_'].map((prefix) => ({ prefix, body: isAlnum, min: 36, max: 255 })),
  { prefix: 'github_pat_', body: isWord, min: 22, max: 255 },
  { prefix: 'glpat-', body: isToken, min: 20, max: 255 },
  ...['xoxa-', 'xoxb-', 'xoxp-', 'xoxs-', 'xoxr-'].map((prefix) => ({ prefix, body: (c: number) => isAlnum(c) || c === MINUS, min: 10, max: 255, check: hasDigit })),
  { prefix: 'AIza', body: isToken, min: 35, max: 35 },
];

// Most words are refused on their first letter, before any prefix is compared.
const TOKEN_STARTS = new Set(TOKEN_RULES.map((r) => r.prefix.charCodeAt(0)));

function tokenRuleMatches(t: string, s: number, e: number): boolean {
  if (!TOKEN_STARTS.has(t.charCodeAt(s))) return false;
  for (const rule of TOKEN_RULES) {
    if (!t.startsWith(rule.prefix, s)) continue;
    const b = s + rule.prefix.length;
    const len = e - b;
    if (len < rule.min || len > rule.max) continue;
    let ok = true;
    for (let i = b; i < e && ok; i++) ok = rule.body(t.charCodeAt(i));
    if (ok && (!rule.check || rule.check(t, b, e))) return true;
  }
  return false;
}

/** Provider tokens: each maximal run of token characters is checked once against the rules. */
function findProviderTokens(t: string, out: Spans): void {
  const n = t.length;
  let i = 0;
  while (i < n) {
    if (!isToken(t.charCodeAt(i))) {
      i++;
      continue;
    }
    let r = i + 1;
    while (r < n && isToken(t.charCodeAt(r))) r++;
    if (tokenRuleMatches(t, i, r)) {
      // GitLab's newer tokens carry dot-separated parts after the base64.
      if (t.startsWith('glpat-', i)) {
        while (t.charCodeAt(r) === DOT && isToken(t.charCodeAt(r + 1))) {
          r += 2;
          while (r < n && isToken(t.charCodeAt(r))) r++;
        }
      }
      out.push(i, r);
    }
    i = r;
  }
}

const isB64TokenChar = (c: number) => isAlnum(c) || c === MINUS || c === DOT || c === 95 || c === 126 || c === PLUS || c === SLASH;

/** RFC 6750 `Bearer` and RFC 7617 `Basic` credentials. */
function findAuthCredentials(t: string, out: Spans): void {
  const re = /(?<![A-Za-z0-9_])(?:bearer|basic)[ \t]+/gi;
  let m: RegExpExecArray | null;
  while ((m = re.exec(t)) !== null) {
    const s = m.index + m[0].length;
    let e = s;
    while (isB64TokenChar(t.charCodeAt(e))) e++;
    while (e > s && t.charCodeAt(e - 1) === DOT) e--;
    const core = e;
    while (t.charCodeAt(e) === EQ) e++;
    if (core - s >= 16 && mixesClasses(t, s, core)) out.push(s, e);
    re.lastIndex = Math.max(e, re.lastIndex);
  }
}

/** At least two of lower case, upper case, digits: random credentials do, words do not. */
function mixesClasses(t: string, s: number, e: number): boolean {
  let lower = 0;
  let upper = 0;
  let digit = 0;
  for (let i = s; i < e; i++) {
    const c = t.charCodeAt(i);
    if (isLower(c)) lower = 1;
    else if (isUpper(c)) upper = 1;
    else if (isDigit(c)) digit = 1;
  }
  return lower + upper + digit >= 2;
}

/** The password of `scheme://user:password@host`. */
function findUrlPasswords(t: string, out: Spans): void {
  let i = t.indexOf('://');
  while (i >= 0) {
    let p = i + 3;
    const limit = Math.min(t.length, p + 128);
    while (p < limit && isUserinfoChar(t.charCodeAt(p)) && t.charCodeAt(p) !== COLON) p++;
    let next = i + 3;
    if (p > i + 3 && t.charCodeAt(p) === COLON) {
      const s = p + 1;
      let e = s;
      const plimit = Math.min(t.length, s + 256);
      while (e < plimit && isUserinfoChar(t.charCodeAt(e))) e++;
      if (e > s && t.charCodeAt(e) === 64) {
        out.push(s, e);
        next = e;
      }
    }
    i = t.indexOf('://', next);
  }
}

// Userinfo (RFC 3986) percent-encodes its delimiters, so none of these occur in it; excluding
// brackets also keeps a placeholder from being matched again.
function isUserinfoChar(c: number): boolean {
  if (c <= 32 || c === 0x7f) return false;
  switch (c) {
    case SLASH:
    case 63: // ?
    case 35: // #
    case 64: // @
    case 91: // [
    case 93: // ]
    case DQUOTE:
    case SQUOTE:
    case BACKTICK:
    case LT:
    case GT:
      return false;
    default:
      return true;
  }
}

// Key names whose value is a secret, compared lower-cased with '-', '_' and '.' removed, as a suffix
// (DB_PASSWORD, x-api-key, clientSecret, aws_secret_access_key).
const SECRET_KEYS = ['password', 'passwd', 'passphrase', 'secret', 'secretkey', 'apikey', 'accesskey', 'privatekey', 'token', 'credential', 'credentials'];
// Too common as words to stand alone (`PWD` is the working directory): only as a key's last part.
const SHORT_SECRET_KEYS = /(?:^|[-_.])(?:pass|pwd)$/;
const NOT_A_VALUE = new Set(['true', 'false', 'null', 'none', 'nil', 'undefined']);

function isSecretKey(id: string): boolean {
  const lower = id.toLowerCase();
  if (SHORT_SECRET_KEYS.test(lower) && lower !== 'pwd') return true;
  const norm = lower.replace(/[-_.]/g, '');
  return SECRET_KEYS.some((k) => norm.endsWith(k));
}

const isIdentChar = (c: number) => isWord(c) || c === MINUS || c === DOT;
const isQuote = (c: number) => c === DQUOTE || c === SQUOTE || c === BACKTICK;

function isBareValueChar(c: number): boolean {
  if (c <= 32 || c === 0x7f) return false;
  switch (c) {
    case DQUOTE:
    case SQUOTE:
    case BACKTICK:
    case COMMA:
    case 59: // ;
    case 38: // &
    case LT:
    case GT:
    case LPAREN:
    case RPAREN:
    case 91: // [
    case 93: // ]
    case 123: // {
    case 125: // }
    case BACKSLASH:
      return false;
    default:
      return true;
  }
}

/**
 * The first index of `needle` at or after `from`, remembered: `from` only grows while a text is
 * scanned, so the many separators of a hostile text do not each search it to its end.
 */
function forwardFinder(t: string): (needle: string, from: number) => number {
  const memo = new Map<string, { from: number; at: number }>();
  return (needle, from) => {
    const m = memo.get(needle);
    if (m && from >= m.from && (m.at < 0 || from <= m.at)) return m.at;
    const at = t.indexOf(needle, from);
    memo.set(needle, { from, at });
    return at;
  };
}

// Quotes in prose need not pair up; a quoted value is not looked for further away than this.
const MAX_QUOTED = 1024;

/** `key=value`, `key: value`, `"key": "value"` where the key names a secret. */
function findAssignments(t: string, out: Spans): void {
  const n = t.length;
  const find = forwardFinder(t);
  let skipUntil = 0;
  // The end of the last bare value scanned: a later value starting inside it ends there too.
  let runStart = -1;
  let runEnd = -1;
  let runTrimmed = -1;
  for (let q = 0; q < n; q++) {
    const c = t.charCodeAt(q);
    if ((c !== EQ && c !== COLON) || q < skipUntil) continue;
    let v = q + 1;
    let tight = c === EQ;
    if (c === COLON) {
      const d = t.charCodeAt(q + 1);
      if (d === COLON || d === SLASH) continue;
      if (d === EQ) v = q + 2;
      else tight = false;
    } else {
      const p = t.charCodeAt(q - 1);
      const d = t.charCodeAt(q + 1);
      if (p === EQ || p === BANG || p === LT || p === GT || p === COLON || d === EQ || d === GT) continue;
    }
    // The key, leftwards: spaces, a closing quote (maybe escaped), the identifier.
    let j = q - 1;
    for (let k = 0; k < 8 && (t.charCodeAt(j) === SP || t.charCodeAt(j) === 9); k++, j--) tight = false;
    if (isQuote(t.charCodeAt(j))) {
      j--;
      if (t.charCodeAt(j) === BACKSLASH) j--;
    }
    const idEnd = j + 1;
    let idStart = idEnd;
    while (idStart > 0 && idEnd - idStart < 64 && isIdentChar(t.charCodeAt(idStart - 1))) idStart--;
    if (idStart === idEnd || !isSecretKey(t.slice(idStart, idEnd))) continue;
    // The value.
    for (let k = 0; k < 8 && (t.charCodeAt(v) === SP || t.charCodeAt(v) === 9); k++, v++) tight = false;
    let open = t.charCodeAt(v);
    let escaped = false;
    if (open === BACKSLASH && isQuote(t.charCodeAt(v + 1))) {
      escaped = true;
      v++;
      open = t.charCodeAt(v);
    }
    if (isQuote(open)) {
      const s = v + 1;
      const close = (escaped ? '\\' : '') + String.fromCharCode(open);
      const e = find(close, s);
      if (e <= s || e - s > MAX_QUOTED) continue;
      const nl = find('\n', s);
      const nul = find('\0', s);
      if ((nl >= 0 && nl < e) || (nul >= 0 && nul < e)) continue;
      if (isReferenceAt(t, s, e - s) || PLACEHOLDER.test(t.slice(s, e))) continue;
      out.push(s, e);
      skipUntil = e;
      continue;
    }
    // Every later value starting inside this run ends where it ends: scan (and trim) it once.
    if (!(v > runStart && v < runEnd)) {
      let e = v;
      while (e < n && isBareValueChar(t.charCodeAt(e))) e++;
      runStart = v;
      runEnd = e;
      while (e > v && t.charCodeAt(e - 1) === DOT) e--; // a sentence's full stop
      runTrimmed = e;
    }
    const e = Math.max(v, runTrimmed);
    const len = e - v;
    // A value is read through only when it is accepted (and then skipped) or holds no '=' or ':'
    // (so no later candidate starts inside it): overlapping candidates stay linear.
    // No upper bound: a one-line base64 key in `PRIVATE_KEY=MIIE…` is long.
    if (len === 0 || (tight ? len < 3 : len < 6) || isReferenceAt(t, v, len)) continue;
    if (!tight && !hasDigitOrSymbol(t, v, e)) continue;
    out.push(v, e);
    skipUntil = e;
  }
}

/** A variable, format directive, mask or template in place of a value, or a literal. */
function isReferenceAt(t: string, s: number, len: number): boolean {
  const c = t.charCodeAt(s);
  if (c === DOLLAR || c === PERCENT || c === ASTERISK || c === 123 || c === LT) return true;
  return len <= 9 && NOT_A_VALUE.has(t.slice(s, s + len).toLowerCase());
}

function hasDigitOrSymbol(t: string, s: number, e: number): boolean {
  for (let i = s; i < e; i++) {
    const c = t.charCodeAt(i);
    if (isDigit(c) || (c < 128 && !isAlnum(c) && c !== 95 && c !== MINUS && c !== DOT)) return true;
  }
  return false;
}

function findSecrets(t: string, out: Spans, generic: boolean): void {
  if (!generic) {
    findProviderTokens(t, out);
    return;
  }
  const all: Spans = [];
  findProviderTokens(t, all);
  findAuthCredentials(t, all);
  findUrlPasswords(t, all);
  findAssignments(t, all);
  unionInto(all, out);
}

/** Sorts spans and merges the overlapping ones (a key in an assignment is one secret). */
function unionInto(spans: Spans, out: Spans): void {
  const order: number[] = [];
  for (let k = 0; k < spans.length; k += 2) order.push(k);
  order.sort((a, b) => spans[a]! - spans[b]! || spans[b + 1]! - spans[a + 1]!);
  let s = -1;
  let e = -1;
  for (const k of order) {
    const ks = spans[k]!;
    const ke = spans[k + 1]!;
    if (ks < e) {
      if (ke > e) e = ke;
      continue;
    }
    if (e > s) out.push(s, e);
    s = ks;
    e = ke;
  }
  if (e > s) out.push(s, e);
}

// --- Email --------------------------------------------------------------------------------------

function isLocalChar(c: number): boolean {
  if (isAlnum(c) || c === DOT || c === 95 || c === PERCENT || c === PLUS || c === MINUS) return true;
  // Accented Latin, Greek and Cyrillic letters; not CJK, which is often written against an address.
  return (c >= 0xc0 && c <= 0x24f && c !== 0xd7 && c !== 0xf7) || (c >= 0x370 && c <= 0x4ff);
}

const isDomainChar = (c: number) => isAlnum(c) || c === DOT || c === MINUS;

function findEmails(t: string, out: Spans): void {
  let floor = 0;
  let a = t.indexOf('@');
  while (a >= 0) {
    const end = emailAt(t, a, floor, out);
    if (end > 0) {
      floor = end;
      a = t.indexOf('@', end);
    } else a = t.indexOf('@', a + 1);
  }
}

/** The end of the address around the '@' at a (pushed to out), or -1. */
function emailAt(t: string, a: number, floor: number, out: Spans): number {
  let s = a;
  while (s > floor && a - s < 64 && isLocalChar(t.charCodeAt(s - 1))) s--;
  if (s > floor && isLocalChar(t.charCodeAt(s - 1))) return -1; // longer than an address allows
  while (s < a && !isAlnum(t.charCodeAt(s)) && t.charCodeAt(s) < 128) s++;
  if (s === a) return -1;
  let e = a + 1;
  while (e - a <= 254 && isDomainChar(t.charCodeAt(e))) e++;
  if (isDomainChar(t.charCodeAt(e))) return -1;
  while (e > a + 1 && (t.charCodeAt(e - 1) === DOT || t.charCodeAt(e - 1) === MINUS)) e--;
  if (!validDomain(t, a + 1, e)) return -1;
  out.push(s, e);
  return e;
}

// `logo@2x.png` names an image at double density, not an address; no such TLD exists.
const IMAGE_SUFFIX = /^(?:png|jpe?g|gif|svg|webp)$/i;

function validDomain(t: string, s: number, e: number): boolean {
  let labels = 0;
  let ls = s;
  for (let i = s; i <= e; i++) {
    if (i < e && t.charCodeAt(i) !== DOT) continue;
    const len = i - ls;
    if (len < 1 || len > 63 || t.charCodeAt(ls) === MINUS || t.charCodeAt(i - 1) === MINUS) return false;
    labels++;
    if (i === e) {
      // The TLD: letters only, or an IDN's xn-- form.
      if (t.startsWith('xn--', ls)) return labels >= 2;
      if (len < 2 || IMAGE_SUFFIX.test(t.slice(ls, e))) return false;
      for (let k = ls; k < e; k++) if (!isUpper(t.charCodeAt(k)) && !isLower(t.charCodeAt(k))) return false;
      return labels >= 2;
    }
    ls = i + 1;
  }
  return false;
}

// --- IBAN ---------------------------------------------------------------------------------------

// IBAN lengths by country, from the SWIFT IBAN registry.
const IBAN_LENGTH: Readonly<Record<string, number>> = {
  AD: 24, AE: 23, AL: 28, AT: 20, AZ: 28, BA: 20, BE: 16, BG: 22, BH: 22, BI: 27, BR: 29, BY: 28,
  CH: 21, CR: 22, CY: 28, CZ: 24, DE: 22, DJ: 27, DK: 18, DO: 28, EE: 20, EG: 29, ES: 24, FI: 18,
  FK: 18, FO: 18, FR: 27, GB: 22, GE: 22, GI: 23, GL: 18, GR: 27, GT: 28, HN: 28, HR: 21, HU: 28,
  IE: 22, IL: 23, IQ: 23, IS: 26, IT: 27, JO: 30, KW: 30, KZ: 20, LB: 28, LC: 32, LI: 21, LT: 20,
  LU: 20, LV: 21, LY: 25, MC: 27, MD: 24, ME: 22, MK: 19, MN: 20, MR: 27, MT: 31, MU: 30, NI: 28,
  NL: 18, NO: 15, OM: 23, PK: 24, PL: 28, PS: 29, PT: 25, QA: 29, RO: 24, RS: 22, RU: 33, SA: 24,
  SC: 31, SD: 18, SE: 24, SI: 19, SK: 24, SM: 27, SO: 23, ST: 25, SV: 28, TL: 23, TN: 24, TR: 26,
  UA: 29, VA: 22, VG: 24, XK: 20, YE: 30,
};

/** ISO 7064 MOD 97-10 over the rearranged IBAN (country and check digits moved to the end). */
function ibanChecksumValid(iban: string): boolean {
  const s = iban.slice(4) + iban.slice(0, 4);
  let r = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (isDigit(c)) r = (r * 10 + (c - 48)) % 97;
    else if (isUpper(c)) r = (r * 100 + (c - 55)) % 97;
    else return false;
  }
  return r === 1;
}

function findIbans(t: string, out: Spans): void {
  const re = /(?<![A-Za-z0-9_])[A-Z]{2}[0-9]{2}/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(t)) !== null) {
    const s = m.index;
    const length = IBAN_LENGTH[t.slice(s, s + 2)];
    if (length === undefined) continue;
    let p = s;
    let iban = '';
    while (iban.length < length) {
      const c = t.charCodeAt(p);
      if (isUpper(c) || isDigit(c)) {
        iban += t.charAt(p);
        p++;
      } else if (c === SP && iban.length % 4 === 0 && (isUpper(t.charCodeAt(p + 1)) || isDigit(t.charCodeAt(p + 1)))) p++;
      else break;
    }
    if (iban.length === length && !isWord(t.charCodeAt(p)) && ibanChecksumValid(iban)) {
      out.push(s, p);
      re.lastIndex = p;
    }
  }
}

// --- Digit chains: cards and phones ---------------------------------------------------------------

// A chain is a run of digit groups joined by one space, '-' or '.', or by a parenthesised group
// ("+1 (555) 123-4567"). Cards and phones are judged on its groups; the characters around it
// decide whether its end groups belong to something else (a word, a time, a decimal, a price).
interface Chain {
  /** Digit runs: group k is [s[k], e[k]). */
  s: number[];
  e: number[];
  /** The separator before group k (0 for the first, or when only a parenthesis separates). */
  sep: number[];
  paren: boolean[];
  plus: boolean;
  gluedLeft: boolean;
  gluedRight: boolean;
}

/** Index past `(ddd)` at i (1-5 digits), or -1. */
function parenGroupEnd(t: string, i: number): number {
  if (t.charCodeAt(i) !== LPAREN) return -1;
  let j = i + 1;
  while (isDigit(t.charCodeAt(j)) && j - i <= 5) j++;
  return j > i + 1 && t.charCodeAt(j) === RPAREN ? j + 1 : -1;
}

function scanChains(t: string, visit: (c: Chain) => void): void {
  const n = t.length;
  let i = 0;
  while (i < n) {
    const c = t.charCodeAt(i);
    if (isDigit(c) || (c === PLUS && isDigit(t.charCodeAt(i + 1))) || (c === LPAREN && parenGroupEnd(t, i) > 0)) {
      i = chainAt(t, i, visit);
      continue;
    }
    if (isWord(c)) {
      // Digits inside a word (a hash, an id, `v2`) are part of that word.
      while (i < n && isWord(t.charCodeAt(i))) i++;
      continue;
    }
    i++;
  }
}

function chainAt(t: string, i: number, visit: (c: Chain) => void): number {
  const chain: Chain = { s: [], e: [], sep: [], paren: [], plus: false, gluedLeft: false, gluedRight: false };
  const prev = t.charCodeAt(i - 1);
  let j = i;
  if (t.charCodeAt(i) === PLUS) {
    j = i + 1;
    // `2+5551234567` is arithmetic, `abc+1…` is not a number's start.
    if (isWord(prev)) chain.gluedLeft = true;
    else chain.plus = true;
  } else if (t.charCodeAt(i) === LPAREN) {
    if (isWord(prev)) chain.gluedLeft = true; // `f(555) 123-4567` is a call
  } else if ((prev === COMMA || prev === COLON || prev === SLASH || prev === DOT || prev === PLUS || prev === MINUS) && isDigit(t.charCodeAt(i - 2))) {
    // The tail of `1,234`, `12:30`, `1/2`, `3.14`.
    chain.gluedLeft = true;
  }
  let sep = 0;
  for (;;) {
    const paren = t.charCodeAt(j) === LPAREN;
    const gs = paren ? j + 1 : j;
    let ge = gs;
    while (isDigit(t.charCodeAt(ge))) ge++;
    chain.s.push(gs);
    chain.e.push(ge);
    chain.sep.push(sep);
    chain.paren.push(paren);
    const k = paren ? ge + 1 : ge;
    const x = t.charCodeAt(k);
    if ((x === SP || x === MINUS || x === DOT) && isDigit(t.charCodeAt(k + 1))) {
      sep = x;
      j = k + 1;
    } else if (x === SP && parenGroupEnd(t, k + 1) > 0) {
      sep = SP;
      j = k + 1;
    } else if (x === LPAREN && !paren && parenGroupEnd(t, k) > 0) {
      sep = 0;
      j = k;
    } else if (paren && isDigit(x)) {
      sep = 0;
      j = k;
    } else {
      chain.gluedRight = isWord(x) || x === PERCENT || ((x === COMMA || x === COLON || x === SLASH) && isDigit(t.charCodeAt(k + 1)));
      visit(chain);
      return k;
    }
  }
}

/** Groups [u0, u1) of a chain that stand on their own. */
function usable(c: Chain): [number, number] {
  return [c.gluedLeft ? 1 : 0, c.gluedRight ? c.s.length - 1 : c.s.length];
}

function digitsOf(c: Chain, k: number): number {
  return c.e[k]! - c.s[k]!;
}

function luhnValid(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return false;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

function cardWindow(t: string, c: Chain, a: number, b: number): boolean {
  const first = t.charCodeAt(c.s[a]!);
  if (first < 50 || first > 54) return false; // issuer digits 2-6
  if (b > a) {
    if (digitsOf(c, a) !== 4) return false;
    for (let k = a + 1; k < b; k++) if (digitsOf(c, k) < 4 || digitsOf(c, k) > 6) return false;
    if (digitsOf(c, b) > 6) return false;
  }
  let digits = '';
  for (let k = a; k <= b; k++) digits += t.slice(c.s[k]!, c.e[k]!);
  return luhnValid(digits);
}

function findCards(t: string, out: Spans): void {
  scanChains(t, (c) => {
    const [u0, u1] = usable(c);
    for (let a = u0; a < u1; a++) {
      // Not a `+` number, not inside a parenthesis, not the fraction of a decimal.
      if (c.paren[a] || (a === 0 && c.plus) || (a > 0 && c.sep[a] === DOT)) continue;
      let digits = 0;
      let best = -1;
      for (let b = a; b < u1; b++) {
        if (b > a && (c.paren[b] || (c.sep[b] !== SP && c.sep[b] !== MINUS) || c.sep[b] !== c.sep[a + 1])) break;
        digits += digitsOf(c, b);
        if (digits > 19) break;
        const decimalAfter = b + 1 < c.s.length && c.sep[b + 1] === DOT;
        if (digits >= 13 && !decimalAfter && cardWindow(t, c, a, b)) best = b;
      }
      if (best >= 0) {
        out.push(c.s[a]!, c.e[best]!);
        a = best;
      }
    }
  });
}

const groupValue = (t: string, c: Chain, k: number) => Number(t.slice(c.s[k]!, c.e[k]!));

function looksLikeDate(t: string, c: Chain, u0: number): boolean {
  const l0 = digitsOf(c, u0);
  const l1 = digitsOf(c, u0 + 1);
  const l2 = digitsOf(c, u0 + 2);
  const v0 = groupValue(t, c, u0);
  const v1 = groupValue(t, c, u0 + 1);
  const v2 = groupValue(t, c, u0 + 2);
  const year = (v: number) => v >= 1000 && v <= 2999;
  if (l0 === 4 && l1 === 2 && l2 === 2) return year(v0) && v1 >= 1 && v1 <= 12 && v2 >= 1 && v2 <= 31;
  if (l0 === 2 && l1 === 2 && l2 === 4) return year(v2) && v0 >= 1 && v1 >= 1 && ((v0 <= 31 && v1 <= 12) || (v0 <= 12 && v1 <= 31));
  return false;
}

function phoneSpan(t: string, c: Chain): [number, number] | undefined {
  const [u0, u1] = usable(c);
  const k = u1 - u0;
  if (k <= 0 || k > 15) return undefined;
  let digits = 0;
  for (let g = u0; g < u1; g++) digits += digitsOf(c, g);
  if (digits < 7 || digits > 15) return undefined;
  const intl = c.plus && u0 === 0;

  let dots = 0;
  let others = 0;
  let parens = 0;
  for (let g = u0; g < u1; g++) {
    if (c.paren[g]) {
      parens++;
      if (g !== (intl ? u0 + 1 : u0)) return undefined;
      if (digitsOf(c, g) > 4 || (!intl && digitsOf(c, g) < 2)) return undefined;
    }
    if (g === u0) continue;
    if (c.sep[g] === DOT) dots++;
    else if (c.sep[g] !== 0) others++;
  }
  // `52.5200 13.4050` and `3.14159` are not phones; dotted phones have three groups or more.
  if (parens > 1 || (dots > 0 && (others > 0 || k < 3))) return undefined;

  if (intl) {
    if (k > 1 && digitsOf(c, u0) > 3) return undefined; // country codes are 1-3 digits
    // One digit only right after the country code (`+33 6 12 34 56 78`) or as `(0)`.
    for (let g = u0 + 2; g < u1; g++) if (digitsOf(c, g) < 2 && !c.paren[g]) return undefined;
  } else {
    if (k < 2 || (k === 2 && digits < 9)) return undefined;
    const first = digitsOf(c, u0);
    // A lone leading digit is only the North American trunk prefix: 1-800-555-0199.
    if (first === 1 ? !(t.charCodeAt(c.s[u0]!) === 49 && digits === 11) : first > 5) return undefined;
    for (let g = u0 + 1; g < u1; g++) if (digitsOf(c, g) < 2 || digitsOf(c, g) > 8) return undefined;
    if (k === 3 && c.sep[u0 + 1] === c.sep[u0 + 2] && parens === 0 && looksLikeDate(t, c, u0)) return undefined;
    if (parens === 0) {
      let years = true;
      let thousands = true;
      for (let g = u0; g < u1; g++) {
        const v = groupValue(t, c, g);
        if (digitsOf(c, g) !== 4 || v < 1900 || v > 2099) years = false;
        if (g > u0 && (digitsOf(c, g) !== 3 || c.sep[g] === MINUS || c.sep[g] !== c.sep[u0 + 1])) thousands = false;
      }
      if (t.charCodeAt(c.s[u0]!) === 48 || first > 3) thousands = false;
      if (years || thousands) return undefined;
      // An IPv4 address or a four-part version.
      if (k === 4 && dots === 3 && [0, 1, 2, 3].every((d) => digitsOf(c, u0 + d) <= 3)) return undefined;
    }
  }
  const start = intl ? c.s[u0]! - 1 : c.paren[u0] ? c.s[u0]! - 1 : c.s[u0]!;
  const end = c.paren[u1 - 1] ? c.e[u1 - 1]! + 1 : c.e[u1 - 1]!;
  return [start, end];
}

function findPhones(t: string, out: Spans): void {
  scanChains(t, (c) => {
    const span = phoneSpan(t, c);
    if (span) out.push(span[0], span[1]);
  });
}

// --- Redactor -----------------------------------------------------------------------------------

type Detector = (t: string, out: Spans, redacting: boolean) => void;

const DETECTORS: Readonly<Record<RedactionKind, Detector>> = {
  private_key: findPrivateKeys,
  jwt: findJwts,
  // The generic rules (assignments, Bearer) are guesses: they run only when secrets are redacted,
  // never as a shield that could hide an address in `password=` from the email rule.
  secret: findSecrets,
  email: findEmails,
  iban: findIbans,
  credit_card: findCards,
  phone: findPhones,
};

function mask(t: string, spans: Spans): string {
  let out = '';
  let at = 0;
  for (let k = 0; k < spans.length; k += 2) {
    const s = spans[k]!;
    const e = spans[k + 1]!;
    out += t.slice(at, s) + '\0'.repeat(e - s);
    at = e;
  }
  return out + t.slice(at);
}

/** One pass of every detector; undefined when nothing the redactor wants was found. */
function onePass(text: string, wanted: ReadonlySet<RedactionKind>): { text: string; findings: Findings } | undefined {
  let work = text;
  const claimed: Array<{ s: number; e: number; kind: RedactionKind }> = [];
  let any = false;
  for (const kind of ORDER) {
    const found: Spans = [];
    const redacting = wanted.has(kind);
    DETECTORS[kind](work, found, redacting);
    if (found.length === 0) continue;
    for (let k = 0; k < found.length; k += 2) claimed.push({ s: found[k]!, e: found[k + 1]!, kind });
    if (redacting) any = true;
    work = mask(work, found);
  }
  if (!any) return undefined;
  claimed.sort((a, b) => a.s - b.s);
  const findings: Findings = {};
  let out = '';
  let at = 0;
  for (const { s, e, kind } of claimed) {
    if (!wanted.has(kind)) continue;
    out += text.slice(at, s) + placeholder(kind);
    at = e;
    findings[kind] = (findings[kind] ?? 0) + 1;
  }
  return { text: out + text.slice(at), findings };
}

// A redaction can free a neighbour that a boundary rule had refused (`a@b.co+1 555 123 4567`
// once the address is a placeholder), so passes repeat until one finds nothing: the output is
// then a fixed point and redacting it again changes nothing. Texts with no finding take one pass.
const MAX_PASSES = 4;

function redactWith(wanted: ReadonlySet<RedactionKind>, text: string): { text: string; findings: Findings } {
  let findings: Findings = {};
  if (wanted.size === 0 || text.length === 0) return { text, findings };
  for (let pass = 0; pass < MAX_PASSES; pass++) {
    const r = onePass(text, wanted);
    if (!r) break;
    text = r.text;
    findings = mergeFindings(findings, r.findings);
  }
  return { text, findings };
}

const redactors = new Map<string, Redactor>();

/** A redactor for these kinds; one instance per distinct set. */
export function createRedactor(kinds: readonly RedactionKind[]): Redactor {
  for (const k of kinds) if (!ORDER.includes(k)) throw new TypeError(`unknown redaction kind '${String(k)}'`);
  const canonical = ORDER.filter((k) => kinds.includes(k));
  const key = canonical.join(',');
  let r = redactors.get(key);
  if (!r) {
    const wanted: ReadonlySet<RedactionKind> = new Set(canonical);
    r = Object.freeze({ kinds: Object.freeze(canonical), redact: (text: string) => redactWith(wanted, text) });
    redactors.set(key, r);
  }
  return r;
}

export function mergeFindings(a: Findings, b: Findings): Findings {
  const out: Findings = { ...a };
  for (const k of Object.keys(b) as RedactionKind[]) {
    const n = b[k];
    if (n) out[k] = (out[k] ?? 0) + n;
  }
  return out;
}

// --- Request bodies -----------------------------------------------------------------------------

type Obj = Record<string, unknown>;
type TextFn = (text: string) => string | undefined;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const asArray = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

function visitField(holder: Obj, key: string, fn: TextFn): void {
  const v = holder[key];
  if (typeof v !== 'string') return;
  const r = fn(v);
  if (typeof r === 'string' && r !== v) holder[key] = r;
}

function visitElement(holder: unknown[], i: number, fn: TextFn): void {
  const v = holder[i];
  if (typeof v !== 'string') return;
  const r = fn(v);
  if (typeof r === 'string' && r !== v) holder[i] = r;
}

/** A string, or parts of which those of the given types carry `text`. */
function visitContent(holder: Obj, key: string, partTypes: ReadonlySet<unknown>, fn: TextFn): void {
  const v = holder[key];
  if (typeof v === 'string') return visitField(holder, key, fn);
  for (const part of asArray(v)) if (isObj(part) && partTypes.has(part.type)) visitField(part, 'text', fn);
}

const CHAT_PARTS: ReadonlySet<unknown> = new Set(['text']);
const RESPONSES_PARTS: ReadonlySet<unknown> = new Set(['input_text', 'output_text']);

function chatTexts(body: Obj, fn: TextFn): void {
  for (const m of asArray(body.messages)) {
    if (!isObj(m)) continue;
    visitContent(m, 'content', CHAT_PARTS, fn);
    for (const call of asArray(m.tool_calls)) {
      if (!isObj(call)) continue;
      if (isObj(call.function)) visitField(call.function, 'arguments', fn);
      if (isObj(call.custom)) visitField(call.custom, 'input', fn);
    }
    // The deprecated single function call carries arguments the same way.
    if (isObj(m.function_call)) visitField(m.function_call, 'arguments', fn);
  }
}

function responsesTexts(body: Obj, fn: TextFn): void {
  visitField(body, 'instructions', fn);
  if (typeof body.input === 'string') return visitField(body, 'input', fn);
  for (const item of asArray(body.input)) {
    if (!isObj(item)) continue;
    switch (item.type) {
      case undefined:
      case 'message':
        visitContent(item, 'content', RESPONSES_PARTS, fn);
        break;
      case 'function_call':
        visitField(item, 'arguments', fn);
        break;
      case 'custom_tool_call':
        visitField(item, 'input', fn);
        break;
      case 'function_call_output':
      case 'custom_tool_call_output':
        visitContent(item, 'output', RESPONSES_PARTS, fn);
        break;
    }
  }
}

function embeddingTexts(body: Obj, fn: TextFn): void {
  if (typeof body.input === 'string') return visitField(body, 'input', fn);
  // Token arrays (numbers) are left alone: they are not text.
  const input = asArray(body.input);
  for (let i = 0; i < input.length; i++) visitElement(input, i, fn);
}

function moderationTexts(body: Obj, fn: TextFn): void {
  if (typeof body.input === 'string') return visitField(body, 'input', fn);
  const input = asArray(body.input);
  for (let i = 0; i < input.length; i++) {
    const x = input[i];
    if (typeof x === 'string') visitElement(input, i, fn);
    else if (isObj(x) && x.type === 'text') visitField(x, 'text', fn);
  }
}

/**
 * Calls fn on every text the user supplied in the body; fn may return a replacement. Mutates in
 * place. Only text is visited: never the model, tool definitions, images, audio or files. A
 * malformed body is walked as far as its shape allows, without throwing.
 */
export function mapTexts(endpoint: TextEndpoint, body: Record<string, unknown>, fn: (text: string) => string | undefined): void {
  if (!isObj(body)) return;
  switch (endpoint) {
    case 'chat.completions':
      return chatTexts(body, fn);
    case 'responses':
      return responsesTexts(body, fn);
    case 'embeddings':
      return embeddingTexts(body, fn);
    case 'moderations':
      return moderationTexts(body, fn);
  }
}

/** Redacts every text part of a request body in place; returns what was found (summed). */
export function redactBody(endpoint: TextEndpoint, body: Record<string, unknown>, redactor: Redactor): Findings {
  let findings: Findings = {};
  mapTexts(endpoint, body, (text) => {
    const r = redactor.redact(text);
    findings = mergeFindings(findings, r.findings);
    return r.text;
  });
  return findings;
}
