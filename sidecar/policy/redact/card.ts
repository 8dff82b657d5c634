// Payment card numbers, Luhn-checked.
import { SP, MINUS, DOT, type Spans } from './chars.ts';
import { type Chain, scanChains, usable, digitsOf } from './chain.ts';

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

export function findCards(t: string, out: Spans): void {
  scanChains(t, (c) => {
    // A `+` number is a phone number however its digits fall: its tail may pass Luhn by chance
    // (`+1 5853 7427 5709 42`), and claiming it as a card would hide the phone.
    if (c.plus) return;
    const [u0, u1] = usable(c);
    for (let a = u0; a < u1; a++) {
      // Not inside a parenthesis, not the fraction of a decimal.
      if (c.paren[a] || (a > 0 && c.sep[a] === DOT)) continue;
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
