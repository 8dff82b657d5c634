// Phone numbers, international and national.
import { MINUS, DOT, type Spans } from './chars.ts';
import { type Chain, scanChains, usable, digitsOf } from './chain.ts';

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

export function findPhones(t: string, out: Spans): void {
  scanChains(t, (c) => {
    const span = phoneSpan(t, c);
    if (span) out.push(span[0], span[1]);
  });
}
