// The bench's chart as a person sees it: drawn by chromium, no two pieces of text may cover each
// other. Run on the committed results and on made-up figures that crowd the labels on purpose
// (equal neighbours, values at a target line, negatives, gaps).
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type BrowserContext } from 'playwright-core';
import { renderChart } from './chart.ts';
import { derive, type BenchResults, type Derived } from './report.ts';
import { TARGET_NAMES, type TargetName } from './servers.ts';

interface Drawn {
  text: string;
  x: number;
  y: number;
  w: number;
  h: number;
}

let context: BrowserContext;

beforeAll(async () => {
  context = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'ai-envelope-chart-')), {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

afterAll(async () => {
  await context?.close();
});

/** Every text element's box as chromium lays it out. */
async function drawnTexts(svg: string): Promise<Drawn[]> {
  const page = await context.newPage();
  try {
    await page.setContent(svg);
    return await page.$$eval('text', (els) =>
      els.map((el) => {
        const b = (el as unknown as { getBBox(): { x: number; y: number; width: number; height: number } }).getBBox();
        return { text: el.textContent ?? '', x: b.x, y: b.y, w: b.width, h: b.height };
      }),
    );
  } finally {
    await page.close();
  }
}

/**
 * Pairs of texts that overlap, or that sit on the same line with less than 2 px between them
 * (two values side by side then read as one number).
 */
function collisions(texts: Drawn[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < texts.length; i++) {
    for (let j = i + 1; j < texts.length; j++) {
      const a = texts[i]!;
      const b = texts[j]!;
      const dx = Math.min(a.x + a.w, b.x + b.w) - Math.max(a.x, b.x);
      const dy = Math.min(a.y + a.h, b.y + b.h) - Math.max(a.y, b.y);
      if (dx > -2 && dy > 1) out.push(`'${a.text}' × '${b.text}'`);
    }
  }
  return out;
}

/** Figures chosen to crowd the labels. */
function crowded(): { r: BenchResults; d: Derived } {
  const by = (values: Partial<Record<TargetName, number>>) => (t: string) => values[t as TargetName] ?? NaN;
  const samples = Array.from({ length: 30 }, (_, i) => ({ t: i * 10, mb: 169 }));
  const r = {
    meta: { targets: TARGET_NAMES, cpuModel: 'test CPU', cores: 2, node: 'v24', date: '2026-12-07', plan: { mode: 'full' } },
    restMB: { nginx: 12, 'node-floor': 71, portkey: 142, 'envelope-none': 101, 'envelope-full': 107 },
    soak: [
      { target: 'envelope-none', samples, slopeMBPerMinute: 0.01, endMB: 148, liveHeapAfterMajorGC: [{ t: 5, mb: 24 }] },
      { target: 'envelope-full', samples, slopeMBPerMinute: -0.02, endMB: 169, liveHeapAfterMajorGC: [{ t: 5, mb: 26 }, { t: 200, mb: 26 }] },
    ],
  } as unknown as BenchResults;
  const d = {
    // A p50 on the 1 ms line, a p99 on the 3 ms line, neighbours of equal value.
    addedP50: (_rate: number, t: string) => by({ nginx: 0.12, 'node-floor': 0.22, portkey: 0.54, 'envelope-none': 1.0, 'envelope-full': 1.0 })(t),
    addedP99: (_rate: number, t: string) => by({ nginx: 0.16, 'node-floor': 0.48, portkey: 9.77, 'envelope-none': 1.01, 'envelope-full': 3.0 })(t),
    maxRps: by({ direct: 16195, nginx: 18130, 'node-floor': 12433, portkey: 3430, 'envelope-none': 11150, 'envelope-full': 7219 }),
    addedTtft: (t: string, p: 'p50' | 'p99') => (p === 'p50' ? by({ nginx: 0.24, 'node-floor': 0.86, portkey: 6.5, 'envelope-none': 0.65, 'envelope-full': 1.58 })(t) : by({ nginx: -9.12, 'node-floor': -8.09, portkey: 6.48, 'envelope-none': -4.55, 'envelope-full': 4.51 })(t)),
    cpuAt500: by({ nginx: 78, 'node-floor': 181, portkey: 644, 'envelope-none': 259, 'envelope-full': 435 }),
    rssUnderLoad: by({ nginx: 13, 'node-floor': 122, portkey: 411, 'envelope-none': 148, 'envelope-full': 169 }),
  } as unknown as Derived;
  return { r, d };
}

describe('the bench chart in chromium', () => {
  it('keeps every label clear of the others on made-up figures that crowd them', async () => {
    const { r, d } = crowded();
    const texts = await drawnTexts(renderChart(r, d));
    // The crowded values are all drawn, each once per bar that has it.
    expect(texts.filter((t) => t.text === '169')).toHaveLength(2);
    expect(texts.filter((t) => t.text === '1.00')).toHaveLength(2);
    expect(texts.map((t) => t.text)).toEqual(expect.arrayContaining(['p50 target 1 ms', 'p99 target 3 ms', '100 MB', '-9.12']));
    expect(collisions(texts)).toEqual([]);
  });

  it('keeps every label clear of the others on the committed results', async () => {
    const r = JSON.parse(readFileSync(join(import.meta.dirname, 'results', 'latest.json'), 'utf8')) as BenchResults;
    const texts = await drawnTexts(renderChart(r, derive(r)));
    expect(texts.length).toBeGreaterThan(60);
    expect(collisions(texts)).toEqual([]);
  });
});
