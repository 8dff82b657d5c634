// E-mail addresses.
import { isUpper, isLower, isAlnum, PERCENT, PLUS, MINUS, DOT, type Spans } from './chars.ts';

function isLocalChar(c: number): boolean {
  if (isAlnum(c) || c === DOT || c === 95 || c === PERCENT || c === PLUS || c === MINUS) return true;
  // Accented Latin, Greek and Cyrillic letters; not CJK, which is often written against an address.
  return (c >= 0xc0 && c <= 0x24f && c !== 0xd7 && c !== 0xf7) || (c >= 0x370 && c <= 0x4ff);
}

const isDomainChar = (c: number) => isAlnum(c) || c === DOT || c === MINUS;

export function findEmails(t: string, out: Spans): void {
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
