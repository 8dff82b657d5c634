// Digit chains: the groups of digits that cards and phones are judged on.
import { isDigit, isWord, SP, PERCENT, LPAREN, RPAREN, PLUS, COMMA, MINUS, DOT, SLASH, COLON } from './chars.ts';

// A chain is a run of digit groups joined by one space, '-' or '.', or by a parenthesised group
// ("+1 (555) 123-4567"). Cards and phones are judged on its groups; the characters around it
// decide whether its end groups belong to something else (a word, a time, a decimal, a price).
export interface Chain {
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

export function scanChains(t: string, visit: (c: Chain) => void): void {
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
export function usable(c: Chain): [number, number] {
  return [c.gluedLeft ? 1 : 0, c.gluedRight ? c.s.length - 1 : c.s.length];
}

export function digitsOf(c: Chain, k: number): number {
  return c.e[k]! - c.s[k]!;
}
