// Secrets: provider tokens, `Bearer`/`Basic` credentials, URL passwords and (via
// secret-assignment.ts) values assigned to secret-named keys.
import { isDigit, isUpper, isLower, isAlnum, isWord, isToken, DQUOTE, SQUOTE, PLUS, MINUS, DOT, SLASH, COLON, LT, EQ, GT, BACKTICK, type Spans } from './chars.ts';
import { findAssignments } from './secret-assignment.ts';

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

export function findSecrets(t: string, out: Spans, generic: boolean): void {
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
