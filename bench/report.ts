// The results: a markdown table (printed and written), the raw numbers as JSON, and a chart.
// Absolute numbers move with whatever else the shared machine is doing, so every proxy is also
// given as a ratio to the others measured in the same run.
import { spawnSync } from 'node:child_process';
import { createReadStream, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { renderChart } from './chart.ts';
import type { PhaseResult, StreamResult } from './load.ts';
import type { RssSample } from './measure.ts';
import type { Plan } from './main.ts';
import { LABELS, ROOT, type TargetName } from './servers.ts';

export interface PhaseRecord extends PhaseResult {
  cpuSeconds: number | null;
  cpuUsPerRequest: number | null;
  /** The upstream's own cost, to tell a slow proxy from a saturated simulator. */
  simulatorCpuUsPerRequest: number;
  rssMaxMB: number | null;
  /** Which round of the fixed rates (absent: a result from before rounds, or another phase). */
  round?: number;
}

export interface SoakRecord {
  target: string;
  phase: PhaseRecord;
  samples: RssSample[];
  /** Over the soak after its first fifth. */
  slopeMBPerMinute: number;
  startMB: number;
  endMB: number;
  maxMB: number;
  /** Live V8 heap after each full GC during the soak: a leak raises it, whatever RSS does. */
  liveHeapAfterMajorGC: RssSample[];
}

export interface LogCheck {
  target: string;
  /** Requests the bench wrote to the sidecar, and the 2xx answers it read back. */
  sent: number;
  ok: number;
  lines: number;
  uniqueIds: number;
  statuses: Record<string, number>;
  /** One line per request: no id twice, every answer read has its line, no line without a request. */
  pass: boolean;
}

export interface BenchResults {
  meta: ReturnType<typeof machineInfo> & { date: string; durationSeconds: number; loadAverageAtEnd: number[]; plan: Plan; targets: TargetName[]; profile: boolean };
  restMB: Record<string, number>;
  /** With no traffic, after the warm-up: CPU and thread wake-ups per second (absent in older results). */
  idle?: Record<string, { cpuMsPerSecond: number; wakeupsPerSecond: number }>;
  rates: PhaseRecord[];
  max: PhaseRecord[];
  streams: StreamResult[];
  soak: SoakRecord[];
  logs: LogCheck[];
}

/** Below this, an added latency is noise (runs differ by that much), and no ratio is taken to it. */
const MEASURABLE_MS = 0.02;

/** RSS slope (MB per minute) under which memory counts as flat over the soak. */
export const FLAT_MB_PER_MINUTE = 1;

/** A tool's version from its output (nginx -v prints to stderr); 'unknown' if it cannot run. */
function version(cmd: string, args: string[], pattern: RegExp): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return pattern.exec(`${r.stdout ?? ''}${r.stderr ?? ''}`)?.[1] ?? 'unknown';
}

function packageVersion(name: string): string {
  try {
    return (JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

export function machineInfo() {
  const cpu = cpus();
  return {
    cpuModel: cpu[0]?.model ?? 'unknown',
    cores: cpu.length,
    memoryGB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    loadAverageAtStart: loadavg().map((l) => Math.round(l * 100) / 100),
    node: process.version,
    nginx: version('/usr/sbin/nginx', ['-v'], /nginx\/(\S+)/),
    portkey: packageVersion('@portkey-ai/gateway'),
    autocannon: packageVersion('autocannon'),
    commit: version('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], /^(\S+)/),
    // Other work in progress is measured too: the report says so.
    worktreeDirty: spawnSync('git', ['-C', ROOT, 'status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8' }).stdout?.trim() !== '',
  };
}

/** Reads the sidecar's JSON log back and checks it holds exactly one line per request. */
export async function checkLog(target: string, file: string, sent: number, ok: number): Promise<LogCheck> {
  const ids = new Set<string>();
  const statuses: Record<string, number> = {};
  let lines = 0;
  for await (const line of createInterface({ input: createReadStream(file), crlfDelay: Infinity })) {
    if (!line.includes('"msg":"request"')) continue;
    const rec = JSON.parse(line) as { request_id: string; status: number };
    lines++;
    ids.add(rec.request_id);
    statuses[rec.status] = (statuses[rec.status] ?? 0) + 1;
  }
  const logged2xx = Object.entries(statuses).reduce((s, [code, n]) => s + (code.startsWith('2') ? n : 0), 0);
  // Requests cut off when a phase ends may never reach the sidecar, or reach it and get logged
  // as 499: so lines lie between the answers read and the requests written.
  const pass = ids.size === lines && logged2xx >= ok && lines <= sent;
  return { target, sent, ok, lines, uniqueIds: ids.size, statuses, pass };
}

const ms = (v: number) => (Number.isFinite(v) ? `${v.toFixed(Math.abs(v) < 10 ? 2 : 1)} ms` : '—');
const plusMs = (v: number) => (Number.isFinite(v) ? `${v >= 0 ? '+' : '−'}${ms(Math.abs(v))}` : '—');
const times = (v: number) => (Number.isFinite(v) && v > 0 ? `×${v.toFixed(v < 10 ? 2 : 1)}` : '—');
const num = (v: number | null | undefined, digits = 0) => (v !== null && v !== undefined && Number.isFinite(v) ? v.toFixed(digits).replace(/\B(?=(\d{3})+(?!\d))/g, ',') : '—');

function of<T extends { target: string }>(list: T[], name: string): T | undefined {
  return list.find((r) => r.target === name);
}

/** The numbers the table and the targets are made of, per target. */
export interface Derived {
  addedP50: (rate: number, t: string) => number;
  addedP99: (rate: number, t: string) => number;
  /** The p99 added in each round, in the order they ran. */
  addedP99Rounds: (rate: number, t: string) => number[];
  /** CPU per request at 500 req/s, the median round. */
  cpuAt500: (t: string) => number;
  saturated: (rate: number, t: string) => boolean;
  /** Max throughput, the median round. */
  maxRps: (t: string) => number;
  /** Max throughput over a reference's in the same round, each round. */
  maxRatioRounds: (t: string, ref: string) => number[];
  /** The median of those. */
  maxRatio: (t: string, ref: string) => number;
  cpuAtMax: (t: string) => number;
  addedTtft: (t: string, p: 'p50' | 'p99') => number;
  rssUnderLoad: (t: string) => number;
}

/** The middle value (the mean of the two middle ones for an even count); NaN for none. */
export function median(xs: number[]): number {
  const s = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const mid = s.length >> 1;
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** A target's fixed-rate phases at one rate, one per round. */
export function roundsAt(r: BenchResults, rps: number, t: string): PhaseRecord[] {
  return r.rates.filter((p) => p.target === t && p.rate === rps);
}

/** The median over rounds of a figure of a target's phases at one rate. */
export function atRate(r: BenchResults, rps: number, t: string, f: (p: PhaseRecord) => number | null | undefined): number {
  return median(roundsAt(r, rps, t).map((p) => f(p) ?? NaN));
}

export function derive(r: BenchResults): Derived {
  // Added latency within each round (target and direct measured minutes apart, not a quarter of
  // an hour), then the median round.
  const perRound = (key: 'p50' | 'p99') => (rps: number, t: string) =>
    roundsAt(r, rps, t).map((own) => {
      const base = r.rates.find((p) => p.target === 'direct' && p.rate === rps && p.round === own.round);
      return base ? own.latencyMs[key] - base.latencyMs[key] : NaN;
    });
  const added = (key: 'p50' | 'p99') => (rps: number, t: string) => median(perRound(key)(rps, t));
  const maxOf = (t: string) => r.max.filter((p) => p.target === t);
  const ratios = (t: string, ref: string) =>
    maxOf(t).map((own) => {
      const base = r.max.find((p) => p.target === ref && p.round === own.round);
      return base ? own.achievedRps / base.achievedRps : NaN;
    });
  return {
    addedP50: added('p50'),
    addedP99: added('p99'),
    addedP99Rounds: perRound('p99'),
    cpuAt500: (t) => atRate(r, 500, t, (p) => p.cpuUsPerRequest),
    saturated: (rps, t) => atRate(r, rps, t, (p) => p.achievedRps) < rps * 0.95,
    maxRps: (t) => median(maxOf(t).map((p) => p.achievedRps)),
    maxRatioRounds: ratios,
    maxRatio: (t, ref) => median(ratios(t, ref)),
    cpuAtMax: (t) => median(maxOf(t).map((p) => p.cpuUsPerRequest ?? NaN)),
    addedTtft: (t, p) => {
      const base = of(r.streams, 'direct')?.ttftMs[p];
      const own = of(r.streams, t)?.ttftMs[p];
      return base !== undefined && own !== undefined ? own - base : NaN;
    },
    // A peak: the highest of every round and the soak.
    rssUnderLoad: (t) => Math.max(...maxOf(t).map((p) => p.rssMaxMB ?? NaN), of(r.soak, t)?.maxMB ?? 0),
  };
}

export interface TargetCheck {
  what: string;
  measured: string;
  pass: boolean | null;
}

function targetChecks(r: BenchResults, d: Derived): TargetCheck[] {
  const t = 'envelope-full';
  const verdict = (v: number, ok: (x: number) => boolean) => (Number.isFinite(v) ? ok(v) : null);
  const p50 = d.addedP50(500, t);
  const p99 = d.addedP99(500, t);
  const vsPortkey = d.maxRatio(t, 'portkey');
  const vsNginx = d.maxRatio(t, 'nginx');
  const rounds = (ref: string) => (d.maxRatioRounds(t, ref).length > 1 ? ` (median of rounds: ${d.maxRatioRounds(t, ref).map(times).join(', ')})` : '');
  const rss = d.rssUnderLoad(t);
  const soak = of(r.soak, t);
  const slope = soak?.slopeMBPerMinute ?? NaN;
  const gcs = soak?.liveHeapAfterMajorGC ?? [];
  const liveGrowth = gcs.length >= 2 ? gcs.at(-1)!.mb - gcs[0]!.mb : NaN;
  return [
    { what: 'added latency p50 at 500 req/s < 1 ms', measured: plusMs(p50), pass: verdict(p50, (v) => v < 1) },
    {
      what: 'added latency p99 at 500 req/s < 3 ms',
      measured: `${plusMs(p99)}${d.addedP99Rounds(500, t).length > 1 ? ` (median of rounds: ${d.addedP99Rounds(500, t).map(plusMs).join(', ')})` : ''}`,
      pass: verdict(p99, (v) => v < 3),
    },
    { what: "throughput ≥ 2× Portkey's", measured: `${times(vsPortkey)}${rounds('portkey')}`, pass: verdict(vsPortkey, (v) => v >= 2) },
    { what: "throughput ≥ 0.5× nginx's", measured: `${times(vsNginx)}${rounds('nginx')}`, pass: verdict(vsNginx, (v) => v >= 0.5) },
    { what: 'RSS under load < 100 MB', measured: Number.isFinite(rss) ? `${rss.toFixed(1)} MB` : '—', pass: verdict(rss, (v) => v < 100) },
    {
      what: `RSS flat over the soak (slope < ${FLAT_MB_PER_MINUTE} MB/min)`,
      measured: soak ? `${slope >= 0 ? '+' : ''}${slope.toFixed(2)} MB/min over ${Math.round(soak.phase.seconds)} s (${soak.startMB.toFixed(1)} → ${soak.endMB.toFixed(1)} MB)` : 'no soak',
      pass: verdict(slope, (v) => v < FLAT_MB_PER_MINUTE),
    },
    {
      what: 'diagnostic, not an issue target: live heap after full GCs flat over the soak (no leak)',
      measured: gcs.length >= 2 ? `${liveGrowth >= 0 ? '+' : ''}${liveGrowth.toFixed(1)} MB over ${gcs.length} full GCs` : `${gcs.length} full GC in the soak`,
      pass: verdict(liveGrowth, (v) => v < Math.max(5, gcs[0]!.mb * 0.1)),
    },
  ];
}

function markdown(r: BenchResults): string {
  const d = derive(r);
  const names = r.meta.targets;
  const proxies = names.filter((n) => n !== 'direct');
  const rows: string[][] = [];
  const row = (label: string, cell: (t: TargetName) => string) => rows.push([label, ...names.map(cell)]);
  const nginxAdded = (key: 'p50' | 'p99') => (key === 'p50' ? d.addedP50 : d.addedP99)(500, 'nginx');

  for (const rate of r.meta.plan.rates) {
    for (const key of ['p50', 'p99'] as const) {
      row(`latency ${key} @ ${rate} req/s`, (t) => {
        if (roundsAt(r, rate, t).length === 0) return '—';
        const sat = d.saturated(rate, t) ? ` (only ${Math.round(atRate(r, rate, t, (p) => p.achievedRps))}/s)` : '';
        if (t === 'direct') return `${ms(atRate(r, rate, t, (p) => p.latencyMs[key]))}${sat}`;
        return `${plusMs(key === 'p50' ? d.addedP50(rate, t) : d.addedP99(rate, t))}${sat}`;
      });
    }
  }
  if ((r.meta.plan.rounds ?? 1) > 1) {
    row('latency p99 @ 500 req/s, each round', (t) => {
      if (t === 'direct') return roundsAt(r, 500, t).map((p) => ms(p.latencyMs.p99)).join(', ');
      return d.addedP99Rounds(500, t).map(plusMs).join(', ');
    });
  }
  let noiseNote = false;
  for (const key of ['p50', 'p99'] as const) {
    row(`added ${key} @ 500 req/s ÷ nginx's added`, (t) => {
      if (t === 'direct') return '';
      if (nginxAdded(key) < MEASURABLE_MS) {
        noiseNote = true;
        return 'n/a ¹';
      }
      return times((key === 'p50' ? d.addedP50 : d.addedP99)(500, t) / nginxAdded(key));
    });
  }
  for (const key of ['p50', 'p99'] as const) {
    const whole = (t: string) => atRate(r, 500, t, (p) => p.latencyMs[key]);
    row(`${key} @ 500 req/s ÷ nginx's (whole call)`, (t) => (t === 'direct' ? '' : times(whole(t) / whole('nginx'))));
  }
  row('max throughput (req/s)', (t) => num(d.maxRps(t)));
  row('  ÷ nginx', (t) => (t === 'direct' ? '' : times(d.maxRatio(t, 'nginx'))));
  row('  ÷ Portkey', (t) => (t === 'direct' ? '' : times(d.maxRatio(t, 'portkey'))));
  for (const key of ['p50', 'p99'] as const) {
    row(`time to first token ${key}`, (t) => {
      const s = of(r.streams, t);
      if (!s) return '—';
      return t === 'direct' ? ms(s.ttftMs[key]) : plusMs(d.addedTtft(t, key));
    });
  }
  const cpuAt = d.cpuAt500;
  row('CPU per request @ 500 req/s (µs)', (t) => (t === 'direct' ? '' : num(cpuAt(t))));
  row('  ÷ nginx', (t) => (t === 'direct' ? '' : times(cpuAt(t) / cpuAt('nginx'))));
  row('CPU per request at max (µs)', (t) => (t === 'direct' ? '' : num(d.cpuAtMax(t))));
  row('CPU at rest (ms per s)', (t) => num(r.idle?.[t]?.cpuMsPerSecond, 1));
  row('thread wake-ups at rest (per s)', (t) => num(r.idle?.[t]?.wakeupsPerSecond));
  row('RSS at rest (MB)', (t) => num(r.restMB[t], 1));
  row('RSS under load (MB)', (t) => (t === 'direct' ? '' : num(d.rssUnderLoad(t), 1)));
  row('RSS after soak (MB)', (t) => num(of(r.soak, t)?.endMB, 1));
  row('RSS slope over soak (MB/min)', (t) => num(of(r.soak, t)?.slopeMBPerMinute, 2));
  row('live heap after full GCs over soak (MB)', (t) => {
    const gcs = of(r.soak, t)?.liveHeapAfterMajorGC;
    if (!gcs) return '—';
    if (gcs.length === 0) return 'no full GC';
    return `${num(gcs[0]!.mb, 1)} → ${num(gcs.at(-1)!.mb, 1)} (${gcs.length} GCs)`;
  });
  row('non-2xx / errors, all phases', (t) => {
    const phases = [...r.rates, ...r.max, ...r.soak.map((s) => s.phase)].filter((p) => p.target === t);
    const s = of(r.streams, t);
    return `${phases.reduce((a, p) => a + p.non2xx, 0)} / ${phases.reduce((a, p) => a + p.errors, 0) + (s?.failed ?? 0)}`;
  });

  const header = ['', ...names.map((n) => LABELS[n])];
  const table = [header, header.map(() => '---'), ...rows].map((cells) => `| ${cells.join(' | ')} |`).join('\n');

  const checks = targetChecks(r, d);
  const checkTable = [
    '| target (ai-envelope, all policies) | measured | result |',
    '|---|---|---|',
    ...checks.map((c) => `| ${c.what} | ${c.measured} | ${c.pass === null ? 'n/a' : c.pass ? 'PASS' : 'FAIL'} |`),
  ].join('\n');

  const logLines = r.logs.map(
    (l) =>
      `- ${LABELS[l.target as TargetName]}: ${num(l.lines)} request log lines for ${num(l.sent)} requests sent and ${num(l.ok)} 2xx answers read; ${num(l.uniqueIds)} distinct ids; statuses ${JSON.stringify(l.statuses)} — ${l.pass ? 'one line per request' : 'MISMATCH'}`,
  );

  const m = r.meta;
  const p = m.plan;
  return [
    `## ai-envelope side-by-side benchmark (${p.mode}, ${m.date})`,
    '',
    `${m.cpuModel}, ${m.cores} cores, ${m.memoryGB} GB, Linux ${m.kernel}, load average ${m.loadAverageAtStart.join(' ')} at start, ${m.loadAverageAtEnd.join(' ')} at the end; Node ${m.node}, nginx ${m.nginx} (1 worker), Portkey gateway ${m.portkey}, autocannon ${m.autocannon}; commit ${m.commit}${m.worktreeDirty ? ' (with uncommitted changes)' : ''}; run took ${m.durationSeconds} s.`,
    '',
    `Direct is absolute; proxies are what they add to it. ${(p.rounds ?? 1) > 1 ? `Fixed rates and max throughput in ${p.rounds} rounds, the median round reported. ` : ''}Fixed rates: ${p.rateConnections} connections paced evenly, ${p.rateSeconds} s each; max: ${p.maxConnections} connections closed loop, ${p.maxSeconds} s; streams: ${p.streams} per target, ${p.streamConcurrency} at a time, upstream ${p.upstreamLatencyMs} ms + ${p.streamDelayMs} ms per event; soak: ${p.soakSeconds} s with every policy, ${p.soakSecondsNoPolicy ?? p.soakSeconds} s without.${proxies.length < 4 ? ` Only: ${names.join(', ')}.` : ''}`,
    '',
    table,
    '',
    ...(noiseNote ? [`¹ nginx adds less than ${MEASURABLE_MS} ms at this percentile, within this run's noise: a ratio to it means nothing, the whole-call ratio stands in.`, ''] : []),
    checkTable,
    '',
    ...logLines,
    '',
  ].join('\n');
}

export function writeReport(r: BenchResults, dir: string): string {
  const md = markdown(r);
  writeFileSync(join(dir, 'latest.md'), md);
  writeFileSync(join(dir, 'latest.json'), `${JSON.stringify(r, null, 2)}\n`);
  writeFileSync(join(dir, 'latest.svg'), renderChart(r, derive(r)));
  return md;
}

// node bench/report.ts [bench/results/latest.json]: renders the table and chart again from saved numbers.
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const file = process.argv[2] ?? join(ROOT, 'bench', 'results', 'latest.json');
  process.stdout.write(`${writeReport(JSON.parse(readFileSync(file, 'utf8')) as BenchResults, dirname(file))}\n`);
}
