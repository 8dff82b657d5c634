// JSON Web Tokens (JWS and JWE compact forms).
import { Buffer } from 'node:buffer';
import { isToken, DOT, type Spans } from './chars.ts';

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

export function findJwts(t: string, out: Spans): void {
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
