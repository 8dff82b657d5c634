import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadCounter, type BpeEncoding, type TokenCounter } from './bpe.ts';

// The reference: gpt-tokenizer's own encoders, counting special-token spellings as text.
type Count = (text: string, opts: { disallowedSpecial: Set<string> }) => number;
const PLAIN = { disallowedSpecial: new Set<string>() };
const reference = new Map<BpeEncoding, Count>();
const ours = new Map<BpeEncoding, TokenCounter>();
const ENCODINGS: BpeEncoding[] = ['o200k_base', 'cl100k_base'];

beforeAll(async () => {
  reference.set('o200k_base', (await import('gpt-tokenizer/encoding/o200k_base')).countTokens as Count);
  reference.set('cl100k_base', (await import('gpt-tokenizer/encoding/cl100k_base')).countTokens as Count);
  for (const e of ENCODINGS) ours.set(e, loadCounter(e));
});

const same = (encoding: BpeEncoding, text: string) => [text.slice(0, 80), ours.get(encoding)!.countTokens(text)];
const expected = (encoding: BpeEncoding, text: string) => [text.slice(0, 80), reference.get(encoding)!(text, PLAIN)];

// Every text file of the project, cut in paragraphs: prose, code, YAML, tables, CJK and emoji
// from the tests, Markdown.
function corpus(): string[] {
  const root = fileURLToPath(new URL('../..', import.meta.url));
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      if (name === 'node_modules' || name === 'dist' || name.startsWith('.')) continue;
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (/\.(ts|md|ya?ml|json|tpl|txt)$/.test(name) && statSync(path).size < 200_000) {
        out.push(...readFileSync(path, 'utf8').split(/\n\s*\n/));
      }
    }
  };
  walk(root);
  return out.filter((p) => p.length > 0);
}

describe('BPE counts over the rank tables', () => {
  it('equal the reference tokenizer on every paragraph of the project', () => {
    const paragraphs = corpus();
    expect(paragraphs.length).toBeGreaterThan(2_000);
    for (const e of ENCODINGS) {
      let tokens = 0;
      for (const p of paragraphs) {
        const n = ours.get(e)!.countTokens(p);
        if (n !== reference.get(e)!(p, PLAIN)) expect(same(e, p)).toEqual(expected(e, p));
        tokens += n;
      }
      expect(tokens).toBeGreaterThan(100_000);
    }
  });

  it('equal the reference on tricky text: scripts, emoji, digits, whitespace, special-token spellings', () => {
    const samples = [
      '',
      ' ',
      '\n\n\n',
      'Größenordnung und Straße, naïve café',
      '東京都は日本の首都です。中文的句子也可以。',
      '한국어 문장입니다. Ελληνικά. Русский текст. עברית. العربية. हिन्दी। ไทย',
      'emoji 🚀🔥👩‍👩‍👧‍👦 and flags 🇫🇷🇯🇵 and   spaces\t\ttabs',
      '1234567890 3.14159 1,000,000 0x1F 2026-12-06T21:40:00Z',
      "don't can't it's we'll THEY'RE I'M",
      'before <|endoftext|> after <|im_start|>system<|im_end|>',
      'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',
      '    indented\n\tcode();\r\n  // comment ',
      '\u00a0\u2003\u3000 odd spaces',
      'lone surrogates \ud800 and \udfff here',
      '🙂'.repeat(50),
    ];
    for (const e of ENCODINGS) for (const s of samples) expect(same(e, s)).toEqual(expected(e, s));
  });

  it('equal the reference on random Unicode text', () => {
    const text = fc.oneof(
      fc.string({ unit: 'grapheme', maxLength: 60 }),
      fc.string({ unit: 'binary', maxLength: 60 }),
      fc.array(fc.constantFrom('the', ' ', 'token', '\n', '123', 'é', '語', '🚀', "'s", '  ', 'ing', '.', '<|endoftext|>'), { maxLength: 40 }).map((a) => a.join('')),
    );
    for (const e of ENCODINGS) {
      fc.assert(
        fc.property(text, (s) => ours.get(e)!.countTokens(s) === reference.get(e)!(s, PLAIN)),
        { numRuns: 2_000, seed: 20261206 },
      );
    }
  });
});
