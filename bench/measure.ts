// What a proxy process costs, read from /proc so that every target (nginx, Node processes) is
// measured the same way and from outside: CPU time and resident memory of the process and its
// children (nginx's work happens in its worker processes, not in the master we spawn).
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

let ticksPerSecond: number | undefined;

function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

function readStat(pid: number): string[] | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may hold spaces and parentheses; the fields after the last ')' do not.
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** The pid and all its descendants. Read once per target: workers of a proxy do not come and go under load. */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    const ppid = Number(readStat(pid)?.[1]);
    if (!Number.isInteger(ppid)) continue;
    const list = children.get(ppid) ?? [];
    list.push(pid);
    children.set(ppid, list);
  }
  const out: number[] = [];
  const walk = (pid: number) => {
    out.push(pid);
    for (const c of children.get(pid) ?? []) walk(c);
  };
  walk(root);
  return out;
}

/** User plus system CPU seconds used so far by these processes. */
export function cpuSeconds(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    const f = readStat(pid);
    // utime and stime are fields 14 and 15 of stat; the slice above starts at field 3.
    if (f) ticks += Number(f[11]) + Number(f[12]);
  }
  return ticks / clockTicks();
}

/**
 * Context switches so far of every thread of these processes. A thread that sleeps and wakes
 * switches out once per wake-up, so at rest the count is the processes' wake-ups (timers, polls).
 */
export function contextSwitches(pids: number[]): number {
  let n = 0;
  for (const pid of pids) {
    let tids: string[];
    try {
      tids = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue;
    }
    for (const tid of tids) {
      try {
        for (const m of readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8').matchAll(/^(?:non)?voluntary_ctxt_switches:\s+(\d+)/gm)) n += Number(m[1]);
      } catch {
        // The thread ended between the listing and the read.
      }
    }
  }
  return n;
}

/** Resident set in MB (VmRSS summed; pages shared between nginx's master and worker count twice). */
export function rssMB(pids: number[]): number {
  let kb = 0;
  for (const pid of pids) {
    try {
      const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (m) kb += Number(m[1]);
    } catch {
      // The process is gone: it contributes nothing.
    }
  }
  return kb / 1024;
}

export interface RssSample {
  /** Seconds since sampling started. */
  t: number;
  mb: number;
}

/** Samples RSS on a timer while a load phase runs. */
export class RssSampler {
  readonly samples: RssSample[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly pids: number[];
  private readonly everyMs: number;

  constructor(pids: number[], everyMs: number) {
    this.pids = pids;
    this.everyMs = everyMs;
  }

  start(): void {
    const t0 = performance.now();
    const take = () => this.samples.push({ t: (performance.now() - t0) / 1000, mb: rssMB(this.pids) });
    take();
    this.timer = setInterval(take, this.everyMs);
  }

  stop(): RssSample[] {
    clearInterval(this.timer);
    return this.samples;
  }

  max(): number {
    return this.samples.reduce((m, s) => Math.max(m, s.mb), 0);
  }
}

/** CPU seconds spent between start() and stop(). */
export class CpuMeter {
  private readonly pids: number[];
  private from = 0;
  seconds = 0;

  constructor(pids: number[]) {
    this.pids = pids;
  }

  start(): void {
    this.from = cpuSeconds(this.pids);
  }

  stop(): number {
    this.seconds = cpuSeconds(this.pids) - this.from;
    return this.seconds;
  }
}

export interface LatencyStats {
  count: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export function latencyStats(values: number[]): LatencyStats {
  if (values.length === 0) return { count: 0, mean: NaN, p50: NaN, p90: NaN, p99: NaN, max: NaN };
  const sorted = Float64Array.from(values).sort();
  // Nearest rank: every reported value is one that was really observed.
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
  let sum = 0;
  for (const v of sorted) sum += v;
  return { count: sorted.length, mean: sum / sorted.length, p50: at(0.5), p90: at(0.9), p99: at(0.99), max: sorted[sorted.length - 1]! };
}

/** Least-squares slope of RSS over time, in MB per minute. */
export function slopePerMinute(samples: RssSample[]): number {
  const n = samples.length;
  if (n < 2) return NaN;
  let st = 0;
  let sm = 0;
  for (const s of samples) {
    st += s.t;
    sm += s.mb;
  }
  const mt = st / n;
  const mm = sm / n;
  let num = 0;
  let den = 0;
  for (const s of samples) {
    num += (s.t - mt) * (s.mb - mm);
    den += (s.t - mt) ** 2;
  }
  return den === 0 ? NaN : (num / den) * 60;
}
