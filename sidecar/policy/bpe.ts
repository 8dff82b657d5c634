// Token counting over OpenAI's byte-pair ranks, held in typed arrays instead of JS objects.
//
// gpt-tokenizer's encoder keeps o200k_base as 200k strings, an array and a Map of them (~20 MB of
// live heap that every full collection marks again, and that made the sidecar's mark-compact
// pauses three times those of a route without token counting), plus a merge cache that grows with
// the variety of the traffic. The counts only need the ranks: here they are one byte buffer, an
// offset array and an open-addressing hash table, ~4 MB in ArrayBuffers the collector never
// traces. The ranks (its copy of OpenAI's `.tiktoken` files) and the pre-tokenizing regex still
// come from gpt-tokenizer, and the tests hold every count equal to its own (ADR 0021).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);

export type BpeEncoding = 'o200k_base' | 'cl100k_base';

/** The token count of a text, special-token spellings counted as plain text. */
export interface TokenCounter {
  countTokens(text: string): number;
}

const NONE = -1;

/** Every token's bytes in one buffer, and a hash table from bytes to rank. */
class RankTable {
  private readonly bytes: Uint8Array;
  /** Token r's bytes are bytes[start[r], start[r + 1]); equal bounds for unused ranks. */
  private readonly start: Uint32Array;
  /** Ranks by hash of their bytes, linear probing; NONE marks a free slot. */
  private slots: Int32Array;

  private constructor(bytes: Uint8Array, start: Uint32Array, slots: Int32Array) {
    this.bytes = bytes;
    this.start = start;
    this.slots = slots;
  }

  /**
   * From a `.tiktoken` rank file: one `<base64 of the token's bytes> <rank>` per line. Decoded
   * straight from the file's bytes into the table: splitting it into 200k strings first raised
   * the process's peak memory by tens of MB, which it then keeps as RSS.
   */
  static parse(file: Uint8Array, name: string): RankTable {
    // First pass: where each line is, its rank and its decoded length.
    let lines = 0;
    for (let i = 0; i < file.length; i++) if (file[i] === 10) lines++;
    lines++;
    const lineAt = new Int32Array(lines);
    const lineLen = new Int32Array(lines);
    const lineRank = new Int32Array(lines);
    let n = 0;
    let maxRank = -1;
    for (let i = 0, lineNo = 1; i < file.length; lineNo++) {
      let end = file.indexOf(10, i);
      if (end < 0) end = file.length;
      if (end > i) {
        const sp = file.indexOf(32, i);
        if (sp <= i || sp >= end) throw new Error(`${name}:${lineNo}: not '<base64> <rank>'`);
        let rank = 0;
        for (let k = sp + 1; k < end; k++) {
          const d = file[k]! - 48;
          if (d < 0 || d > 9) throw new Error(`${name}:${lineNo}: the rank is not a whole number`);
          rank = rank * 10 + d;
        }
        const b64 = sp - i;
        if (b64 % 4 !== 0) throw new Error(`${name}:${lineNo}: base64 of length ${b64}`);
        const pad = (file[sp - 1] === 61 ? 1 : 0) + (file[sp - 2] === 61 ? 1 : 0);
        lineAt[n] = i;
        lineLen[n] = (b64 / 4) * 3 - pad;
        lineRank[n] = rank;
        if (rank > maxRank) maxRank = rank;
        n++;
      }
      i = end + 1;
    }
    const ranks = maxRank + 1;
    // Bytes laid out in rank order; a rank no line names keeps an empty span.
    const lenOfRank = new Int32Array(ranks);
    const lineOfRank = new Int32Array(ranks).fill(NONE);
    for (let k = 0; k < n; k++) {
      lenOfRank[lineRank[k]!] = lineLen[k]!;
      lineOfRank[lineRank[k]!] = k;
    }
    const start = new Uint32Array(ranks + 1);
    let total = 0;
    for (let r = 0; r < ranks; r++) {
      start[r] = total;
      total += lenOfRank[r]!;
    }
    start[ranks] = total;
    const bytes = new Uint8Array(total);
    for (let r = 0; r < ranks; r++) {
      const k = lineOfRank[r]!;
      if (k !== NONE) decodeBase64(file, lineAt[k]!, lenOfRank[r]!, bytes, start[r]!);
    }
    const table = new RankTable(bytes, start, new Int32Array(0));
    // At most half full, so a miss (most pair lookups during merges) ends after a probe or two.
    let size = 1;
    while (size < ranks * 2) size <<= 1;
    const slots = new Int32Array(size).fill(NONE);
    table.slots = slots;
    for (let r = 0; r < ranks; r++) {
      const from = start[r]!;
      const to = start[r + 1]!;
      // Rank files list each byte string once; were one listed twice, its lowest rank would stand.
      if (to === from || table.rank(bytes, from, to) !== NONE) continue;
      let i = hash(bytes, from, to) & (size - 1);
      while (slots[i] !== NONE) i = (i + 1) & (size - 1);
      slots[i] = r;
    }
    return table;
  }

  /** The rank of buf[from, to), or NONE. */
  rank(buf: Uint8Array, from: number, to: number): number {
    const { slots, start, bytes } = this;
    const mask = slots.length - 1;
    const len = to - from;
    let i = hash(buf, from, to) & mask;
    for (;;) {
      const r = slots[i]!;
      if (r === NONE) return NONE;
      const s = start[r]!;
      if (start[r + 1]! - s === len) {
        let k = 0;
        while (k < len && bytes[s + k] === buf[from + k]) k++;
        if (k === len) return r;
      }
      i = (i + 1) & mask;
    }
  }
}

const BASE64 = new Int8Array(128).fill(-1);
for (let i = 0; i < 64; i++) BASE64['ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'.charCodeAt(i)] = i;

/** Decodes `len` bytes of the base64 text starting at src[from] into out[at]. */
function decodeBase64(src: Uint8Array, from: number, len: number, out: Uint8Array, at: number): void {
  let acc = 0;
  let bits = 0;
  let written = 0;
  for (let i = from; written < len; i++) {
    const v = BASE64[src[i]!] ?? -1;
    if (v < 0) throw new Error(`not base64 at byte ${i}`);
    acc = ((acc << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[at + written++] = (acc >> bits) & 0xff;
    }
  }
}

/** FNV-1a over bytes. */
function hash(buf: Uint8Array, from: number, to: number): number {
  let h = 0x811c9dc5;
  for (let i = from; i < to; i++) h = Math.imul(h ^ buf[i]!, 0x01000193);
  return h >>> 0;
}

const encoder = new TextEncoder();

class BpeCounter implements TokenCounter {
  private scratch = new Uint8Array(1024);
  // Boundaries of the current parts of a piece, and the rank of merging each part with the next.
  private cuts = new Int32Array(1025);
  private pairRanks = new Int32Array(1025);

  private readonly table: RankTable;
  private readonly split: RegExp;

  constructor(table: RankTable, split: RegExp) {
    this.table = table;
    this.split = split;
  }

  countTokens(text: string): number {
    let n = 0;
    for (const m of text.matchAll(this.split)) n += this.countPiece(m[0]);
    return n;
  }

  private countPiece(piece: string): number {
    // A UTF-16 unit is at most three UTF-8 bytes.
    if (this.scratch.length < piece.length * 3) this.grow(piece.length * 3);
    const buf = this.scratch;
    // Most pieces are ASCII: copied by hand, without a call into the encoder.
    let len = piece.length;
    for (let i = 0; i < len; i++) {
      const c = piece.charCodeAt(i);
      if (c > 127) {
        len = encoder.encodeInto(piece, buf).written;
        break;
      }
      buf[i] = c;
    }
    if (len === 0) return 0;
    if (this.table.rank(buf, 0, len) !== NONE) return 1;
    return this.merge(buf, len);
  }

  /**
   * Byte-pair merging as OpenAI's tokenizer does it: start from single bytes, and merge the
   * adjacent pair whose joined bytes have the lowest rank (the leftmost on a tie) until no
   * adjacent pair is a token. Quadratic in the piece's length; the caller keeps pieces short.
   */
  private merge(buf: Uint8Array, len: number): number {
    const { table, cuts, pairRanks } = this;
    let parts = len;
    for (let i = 0; i <= len; i++) cuts[i] = i;
    for (let i = 0; i < len - 1; i++) pairRanks[i] = table.rank(buf, i, i + 2);
    pairRanks[len - 1] = NONE;
    for (;;) {
      let best = NONE;
      let at = -1;
      for (let i = 0; i < parts - 1; i++) {
        const r = pairRanks[i]!;
        if (r !== NONE && (best === NONE || r < best)) {
          best = r;
          at = i;
        }
      }
      if (at < 0) return parts;
      // Part `at` absorbs part `at + 1`: drop the cut between them.
      cuts.copyWithin(at + 1, at + 2, parts + 1);
      pairRanks.copyWithin(at + 1, at + 2, parts);
      parts--;
      pairRanks[at] = at + 1 < parts ? table.rank(buf, cuts[at]!, cuts[at + 2]!) : NONE;
      if (at > 0) pairRanks[at - 1] = table.rank(buf, cuts[at - 1]!, cuts[at + 1]!);
    }
  }

  private grow(bytes: number): void {
    this.scratch = new Uint8Array(bytes);
    this.cuts = new Int32Array(bytes + 1);
    this.pairRanks = new Int32Array(bytes + 1);
  }
}

/**
 * Builds a counter for an encoding from the `.tiktoken` rank file gpt-tokenizer ships (OpenAI's
 * own format), read as data: loading the library's encoder module instead would compile its
 * 200k-string array literals, which V8 keeps with the module's code.
 */
export function loadCounter(encoding: BpeEncoding): TokenCounter {
  const file = join(dirname(require.resolve('gpt-tokenizer/package.json')), 'data', `${encoding}.tiktoken`);
  const table = RankTable.parse(readFileSync(file), file);
  const constants = require('gpt-tokenizer/encodingParams/constants') as Record<string, RegExp>;
  const split = encoding === 'o200k_base' ? constants.O200K_TOKEN_SPLIT_REGEX : constants.CL100K_TOKEN_SPLIT_REGEX;
  if (!split) throw new Error(`gpt-tokenizer has no split pattern for ${encoding}`);
  // A private copy: a global regex carries lastIndex, and the library's own encoders share theirs.
  return new BpeCounter(table, new RegExp(split.source, split.flags));
}
