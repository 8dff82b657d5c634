// PEM private-key blocks.
import { isDigit, isUpper, isAlnum, isSpace, SP, PLUS, SLASH, COLON, EQ, type Spans } from './chars.ts';

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

export function findPrivateKeys(t: string, out: Spans): void {
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
