// The chart: six small panels in one SVG, drawn by hand (bars, one line plot) so the bench needs
// no plotting library and the file diffs as text between runs.
import type { BenchResults, Derived } from './report.ts';
import type { TargetName } from './servers.ts';

const SHORT: Record<TargetName, string> = {
  direct: 'direct',
  nginx: 'nginx',
  'node-floor': 'Node',
  portkey: 'Portkey',
  'envelope-none': 'env: none',
  'envelope-full': 'env: all',
};
const COLORS = ['#4c78a8', '#f58518', '#9d755d', '#54a24b', '#e45756', '#72b7b2'];
const PANEL_W = 390;
const PANEL_H = 270;
const MARGIN = { top: 42, right: 12, bottom: 38, left: 52 };

interface Series {
  name: string;
  values: number[];
}

interface Ref {
  value: number;
  label: string;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function label(v: number): string {
  if (!Number.isFinite(v)) return 'n/a';
  if (Math.abs(v) >= 1000) return `${(v / 1000).toFixed(1)}k`;
  return Math.abs(v) >= 10 ? v.toFixed(0) : v.toFixed(2);
}

/** A round tick step giving about four ticks up to `max`. */
function step(max: number): number {
  const raw = max / 4;
  const mag = 10 ** Math.floor(Math.log10(raw));
  return ([1, 2, 2.5, 5, 10].find((m) => m * mag >= raw) ?? 10) * mag;
}

/** An axis from 0 to a round number a little above `max`, with its tick step. */
function axis(max: number): { yMax: number; tick: number } {
  const top = Math.max(1e-3, max) * 1.1;
  const tick = step(top);
  return { yMax: tick * Math.ceil(top / tick), tick };
}

function tickLabel(v: number, tick: number): string {
  if (v >= 1000) return `${+(v / 1000).toFixed(2)}k`;
  return v.toFixed(tick >= 1 || v === 0 ? 0 : tick >= 0.1 ? 1 : 2);
}

function frame(x: number, y: number, title: string, max: number, unit: string): { parts: string[]; sy: (v: number) => number; plotW: number; plotH: number; ox: number; yMax: number } {
  const { yMax, tick } = axis(max);
  const plotW = PANEL_W - MARGIN.left - MARGIN.right;
  const plotH = PANEL_H - MARGIN.top - MARGIN.bottom;
  const ox = x + MARGIN.left;
  const oy = y + MARGIN.top + plotH;
  const sy = (v: number) => oy - (Math.max(0, Math.min(v, yMax)) / yMax) * plotH;
  const parts = [`<text x="${x + 8}" y="${y + 18}" class="title">${esc(title)}</text>`];
  for (let i = 0; i * tick <= yMax + 1e-9; i++) {
    const v = i * tick;
    parts.push(`<line x1="${ox}" x2="${ox + plotW}" y1="${sy(v)}" y2="${sy(v)}" class="grid"/>`);
    parts.push(`<text x="${ox - 6}" y="${sy(v) + 4}" class="tick" text-anchor="end">${tickLabel(v, tick)}</text>`);
  }
  parts.push(`<text x="${x + 10}" y="${y + MARGIN.top - 10}" class="unit">${esc(unit)}</text>`);
  parts.push(`<line x1="${ox}" x2="${ox + plotW}" y1="${oy}" y2="${oy}" class="axis"/>`);
  return { parts, sy, plotW, plotH, ox, yMax };
}

// Text widths estimated on the generous side from the fonts' sizes: the chart is drawn without a
// browser to measure in.
const VAL_CHAR_W = 6;
const VAL_H = 10;
const REF_CHAR_W = 5.2;

interface Box {
  x1: number;
  x2: number;
  y: number;
}

/**
 * Where a bar's value goes: just above the bar, or higher when a value already placed would be
 * under it. Close neighbours with equal values (RSS under load and after the soak) would
 * otherwise print as one number.
 */
function placeValue(placed: Box[], cx: number, top: number, text: string): number {
  const half = (text.length * VAL_CHAR_W) / 2 + 1;
  let y = top - 3;
  for (;;) {
    const hit = placed.find((b) => b.x1 < cx + half && cx - half < b.x2 && Math.abs(b.y - y) < VAL_H);
    if (!hit) break;
    y = hit.y - VAL_H;
  }
  placed.push({ x1: cx - half, x2: cx + half, y });
  return y;
}

function bars(x: number, y: number, title: string, unit: string, categories: string[], series: Series[], refs: Ref[] = []): string {
  const all = [...series.flatMap((s) => s.values), ...refs.map((r) => r.value)].filter(Number.isFinite);
  const { parts, sy, plotW, ox } = frame(x, y, title, Math.max(...all, 0), unit);
  const groupW = plotW / Math.max(1, categories.length);
  const barW = Math.min(28, (groupW * 0.8) / series.length);
  // Reference lines first, so bars and their values are drawn over them.
  for (const r of refs) parts.push(`<line x1="${ox}" x2="${ox + plotW}" y1="${sy(r.value)}" y2="${sy(r.value)}" class="ref"/>`);
  const placed: Box[] = [];
  categories.forEach((cat, i) => {
    const gx = ox + i * groupW + (groupW - barW * series.length) / 2;
    series.forEach((s, j) => {
      const v = s.values[i] ?? NaN;
      const top = Number.isFinite(v) ? sy(Math.max(0, v)) : sy(0);
      const bx = gx + j * barW;
      const text = label(v);
      parts.push(`<rect x="${bx}" y="${top}" width="${barW - 2}" height="${sy(0) - top}" fill="${COLORS[j % COLORS.length]}"/>`);
      parts.push(`<text x="${bx + (barW - 2) / 2}" y="${placeValue(placed, bx + (barW - 2) / 2, top, text)}" class="val" text-anchor="middle">${text}</text>`);
    });
    parts.push(`<text x="${ox + i * groupW + groupW / 2}" y="${sy(0) + 16}" class="cat" text-anchor="middle">${esc(cat)}</text>`);
  });
  // The lines' labels go in a row under the categories: on the lines they covered bars' values.
  let refX = ox;
  for (const r of refs) {
    parts.push(`<line x1="${refX}" x2="${refX + 16}" y1="${sy(0) + 28}" y2="${sy(0) + 28}" class="ref"/>`);
    parts.push(`<text x="${refX + 20}" y="${sy(0) + 31}" class="reftext">${esc(r.label)}</text>`);
    refX += 20 + r.label.length * REF_CHAR_W + 14;
  }
  if (series.length > 1) {
    series.forEach((s, j) => {
      const lx = x + PANEL_W - MARGIN.right - (series.length - j) * 78;
      parts.push(`<rect x="${lx}" y="${y + 27}" width="9" height="9" fill="${COLORS[j % COLORS.length]}"/>`);
      parts.push(`<text x="${lx + 12}" y="${y + 35}" class="tick">${esc(s.name)}</text>`);
    });
  }
  return parts.join('\n');
}

function lines(x: number, y: number, title: string, unit: string, series: { name: string; points: { t: number; mb: number }[]; dashed?: boolean; color: string }[]): string {
  const tMax = Math.max(1, ...series.flatMap((s) => s.points.map((p) => p.t)));
  // Headroom above the lines for the legend.
  const { parts, sy, plotW, ox, yMax } = frame(x, y, title, Math.max(1, ...series.flatMap((s) => s.points.map((p) => p.mb))) * 1.4, unit);
  const sx = (t: number) => ox + (t / tMax) * plotW;
  parts.push(`<text x="${ox + plotW}" y="${sy(0) + 16}" class="tick" text-anchor="end">${Math.round(tMax)} s</text>`);
  parts.push(`<text x="${ox}" y="${sy(0) + 16}" class="tick">0 s</text>`);
  if (series.length === 0) parts.push(`<text x="${ox + plotW / 2}" y="${sy(yMax / 2)}" class="cat" text-anchor="middle">no soak in this run</text>`);
  series.forEach((s, j) => {
    const color = s.color;
    const d = s.points.map((p, i) => `${i ? 'L' : 'M'}${sx(p.t).toFixed(1)},${sy(p.mb).toFixed(1)}`).join(' ');
    parts.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="1.5"${s.dashed ? ' stroke-dasharray="4 3"' : ''}/>`);
    // Full GCs are few: each is marked, so a single one still shows.
    if (s.dashed) for (const p of s.points) parts.push(`<circle cx="${sx(p.t).toFixed(1)}" cy="${sy(p.mb).toFixed(1)}" r="2.5" fill="${color}"/>`);
    parts.push(`<text x="${ox + 6}" y="${sy(yMax) + 14 + j * 13}" class="tick" style="fill:${color}">${esc(s.name)}</text>`);
  });
  return parts.join('\n');
}

export function renderChart(r: BenchResults, d: Derived): string {
  const names = r.meta.targets;
  const proxies = names.filter((n) => n !== 'direct');
  const short = (list: TargetName[]) => list.map((n) => SHORT[n]);
  const cpu = d.cpuAt500;
  const soakOf = (t: string) => r.soak.find((s) => s.target === t);
  const panels = [
    bars(0, 0, 'Added latency at 500 req/s', 'ms over direct', short(proxies), [
      { name: 'p50', values: proxies.map((t) => d.addedP50(500, t)) },
      { name: 'p99', values: proxies.map((t) => d.addedP99(500, t)) },
    ], [
      { value: 1, label: 'p50 target 1 ms' },
      { value: 3, label: 'p99 target 3 ms' },
    ]),
    bars(PANEL_W, 0, 'Max throughput (closed loop)', 'req/s', short(names), [{ name: 'req/s', values: names.map((t) => d.maxRps(t)) }]),
    bars(PANEL_W * 2, 0, 'Added time to first token (stream)', 'ms over direct', short(proxies), [
      { name: 'p50', values: proxies.map((t) => d.addedTtft(t, 'p50')) },
      { name: 'p99', values: proxies.map((t) => d.addedTtft(t, 'p99')) },
    ]),
    bars(0, PANEL_H, 'CPU per request at 500 req/s', 'µs of CPU', short(proxies), [{ name: 'µs', values: proxies.map(cpu) }]),
    bars(PANEL_W, PANEL_H, 'Resident memory', 'MB', short(proxies), [
      { name: 'at rest', values: proxies.map((t) => r.restMB[t] ?? NaN) },
      { name: 'load', values: proxies.map((t) => d.rssUnderLoad(t)) },
      { name: 'after soak', values: proxies.map((t) => soakOf(t)?.endMB ?? NaN) },
    ], [{ value: 100, label: '100 MB' }]),
    lines(
      PANEL_W * 2,
      PANEL_H,
      'Memory during the soak',
      'MB (solid: RSS; dashed: live heap after each full GC)',
      r.soak.flatMap((s, j) => {
        const color = COLORS[(j + 3) % COLORS.length]!;
        const name = SHORT[s.target as TargetName];
        return [
          { name: `${name} RSS (${s.slopeMBPerMinute >= 0 ? '+' : ''}${s.slopeMBPerMinute.toFixed(2)} MB/min)`, points: s.samples, color },
          { name: `${name} live heap`, points: s.liveHeapAfterMajorGC, color, dashed: true },
        ];
      }),
    ),
  ];
  const width = PANEL_W * 3;
  const height = PANEL_H * 2 + 24;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif">
<style>
.title{font-size:13px;font-weight:600}.unit,.tick{font-size:10px;fill:#555}.val{font-size:9px;fill:#333;paint-order:stroke;stroke:#fff;stroke-width:3px;stroke-linejoin:round}.cat{font-size:10px;fill:#222}
.grid{stroke:#e5e5e5}.axis{stroke:#888}.ref{stroke:#d62728;stroke-dasharray:4 3}.reftext{font-size:9px;fill:#d62728}
</style>
<rect width="100%" height="100%" fill="#fff"/>
${panels.join('\n')}
<text x="8" y="${height - 8}" class="tick">${esc(`${r.meta.cpuModel}, ${r.meta.cores} cores, Node ${r.meta.node}, ${r.meta.date} (${r.meta.plan.mode})`)}</text>
</svg>
`;
}
