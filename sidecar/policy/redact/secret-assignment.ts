// Secrets by context: values assigned to keys that name a secret.
import { PLACEHOLDER } from './kinds.ts';
import { isDigit, isAlnum, isWord, SP, DQUOTE, PERCENT, SQUOTE, LPAREN, RPAREN, ASTERISK, COMMA, MINUS, DOT, SLASH, COLON, LT, EQ, GT, BACKSLASH, BACKTICK, DOLLAR, BANG, type Spans } from './chars.ts';

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
export function findAssignments(t: string, out: Spans): void {
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
