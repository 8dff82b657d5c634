// npm run bench [-- --quick] [--soak-seconds N] [--only envelope-full,...] [--profile]
// The side-by-side benchmark of issue #5: the same simulator behind each proxy, the same load,
// one run, on loopback. Phases run target by target inside each phase, so drift on a shared
// machine hits every target alike instead of whichever happened to run last.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { formatHotspots } from './profile.ts';
import { runPhase, runStreams, type PhaseResult, type Probe } from './load.ts';
import { CpuMeter, RssSampler, contextSwitches, cpuSeconds, rssMB, slopePerMinute } from './measure.ts';
import { checkLog, machineInfo, median, writeReport, type BenchResults, type PhaseRecord, type SoakRecord } from './report.ts';
import {
  assertBuilt,
  directTarget,
  killAllNow,
  LABELS,
  ROOT,
  startEnvelope,
  startNginx,
  startNodeFloor,
  startPortkey,
  startSimulator,
  stopAll,
  TARGET_NAMES,
  type SimulatorProcess,
  type Target,
  type EnvelopeOptions,
  type TargetName,
} from './servers.ts';
import { SIDECAR_NODE_OPTIONS } from '../sidecar/runtime.ts';

export interface Plan {
  mode: 'full' | 'quick';
  warmupSeconds: number;
  /** No traffic at all: what an idle pod's proxy costs (timers, polls), after the warm-up. */
  restSeconds: number;
  rates: number[];
  rateSeconds: number;
  /**
   * Every fixed-rate and max-throughput phase runs this many times, the rounds one after the
   * other, so a bad minute on the shared host spoils one round, not the figure: the report takes
   * the median round.
   */
  rounds: number;
  /** Enough to carry 1000 req/s with room for a slow answer, few enough to look like one app. */
  rateConnections: number;
  maxSeconds: number;
  maxConnections: number;
  streams: number;
  streamConcurrency: number;
  /** Per-event delay of the simulator's streams, and its delay before answering, for the TTFT phase. */
  streamDelayMs: number;
  upstreamLatencyMs: number;
  /** The soak of the target the issue's figures are about, every policy on. */
  soakSeconds: number;
  /** The soak of the bare route: a check that the proxy itself holds steady, shorter. */
  soakSecondsNoPolicy: number;
  soakMaxRate: number;
}

const FULL: Plan = {
  mode: 'full',
  warmupSeconds: 3,
  restSeconds: 10,
  rates: [100, 500, 1000],
  rateSeconds: 8,
  rounds: 3,
  rateConnections: 20,
  maxSeconds: 10,
  maxConnections: 64,
  streams: 200,
  streamConcurrency: 10,
  streamDelayMs: 20,
  upstreamLatencyMs: 50,
  // The issue's target is flat RSS over a 5-minute soak: a shorter one catches the heap still
  // growing back after the max phase.
  soakSeconds: 300,
  soakSecondsNoPolicy: 60,
  soakMaxRate: 1000,
};

const QUICK: Plan = { ...FULL, mode: 'quick', warmupSeconds: 1, restSeconds: 3, rateSeconds: 2, rounds: 1, maxSeconds: 3, streams: 40, soakSeconds: 8, soakSecondsNoPolicy: 8 };

const USAGE = `Usage: npm run bench -- [--quick] [--soak-seconds N] [--only NAME[,NAME...]] [--profile]
  --quick           a ~1 minute smoke run (short phases, 8 s soak)
  --soak-seconds N  how long each ai-envelope target is soaked (default 300 with every policy, the issue's
                    5 minutes, and 60 without)
  --only NAMES      run only these targets (direct, the floor, always runs): ${TARGET_NAMES.join(', ')}
  --profile         run the sidecars under --cpu-prof; profiles go to bench/results/profiles
  --sidecar-node-options=STR
                    NODE_OPTIONS for the sidecars instead of the deployed ones (sidecar/runtime.ts);
                    '' for Node's defaults (experiments)
`;

function parsePlan(argv: string[]): { plan: Plan; only: TargetName[]; profile: boolean; nodeOptions: string } {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      'soak-seconds': { type: 'string' },
      only: { type: 'string' },
      profile: { type: 'boolean', default: false },
      'sidecar-node-options': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const plan = { ...(values.quick ? QUICK : FULL) };
  if (values['soak-seconds'] !== undefined) {
    const n = Number(values['soak-seconds']);
    if (!Number.isInteger(n) || n < 0) throw new Error(`--soak-seconds must be a whole number, got '${values['soak-seconds']}'`);
    plan.soakSeconds = n;
    plan.soakSecondsNoPolicy = n;
  }
  let only = TARGET_NAMES;
  if (values.only) {
    const asked = values.only.split(',').map((s) => s.trim());
    const unknown = asked.filter((a) => !TARGET_NAMES.includes(a as TargetName));
    if (unknown.length) throw new Error(`--only: unknown target ${unknown.join(', ')}; known: ${TARGET_NAMES.join(', ')}`);
    only = TARGET_NAMES.filter((n) => n === 'direct' || asked.includes(n));
  }
  return { plan, only, profile: values.profile, nodeOptions: values['sidecar-node-options'] ?? SIDECAR_NODE_OPTIONS };
}

const say = (s: string) => process.stderr.write(`${s}\n`);

async function startTarget(name: TargetName, sim: SimulatorProcess, work: string, opts: EnvelopeOptions): Promise<Target> {
  switch (name) {
    case 'direct':
      return directTarget(sim);
    case 'nginx':
      return startNginx(sim, work);
    case 'node-floor':
      return startNodeFloor(sim, opts.nodeOptions);
    case 'portkey':
      return startPortkey(sim);
    case 'envelope-none':
      return startEnvelope('none', sim, work, opts);
    case 'envelope-full':
      return startEnvelope('full', sim, work, opts);
  }
}

/** A load phase on one target, with the proxy's CPU and RSS (and the simulator's CPU) measured over its window. */
async function measuredPhase(target: Target, sim: SimulatorProcess, opts: { connections: number; seconds: number; rate?: number }, rssEveryMs: number, extra: Probe[] = []): Promise<{ phase: PhaseResult; record: PhaseRecord; rss: RssSampler }> {
  const cpu = new CpuMeter(target.pids);
  const simCpu = new CpuMeter([sim.pid]);
  const rss = new RssSampler(target.pids, rssEveryMs);
  const probes: Probe[] = [cpu, simCpu, ...extra];
  if (target.pids.length) probes.push({ start: () => rss.start(), stop: () => rss.stop() });
  const phase = await runPhase(target, { ...opts, probes });
  const perReq = (s: number) => (phase.ok + phase.non2xx > 0 ? (s * 1e6) / (phase.ok + phase.non2xx) : NaN);
  const record: PhaseRecord = {
    ...phase,
    cpuSeconds: target.pids.length ? cpu.seconds : null,
    cpuUsPerRequest: target.pids.length ? perReq(cpu.seconds) : null,
    simulatorCpuUsPerRequest: perReq(simCpu.seconds),
    rssMaxMB: target.pids.length ? rss.max() : null,
  };
  return { phase, record, rss };
}

function brief(p: PhaseResult): string {
  const bad = p.non2xx + p.errors ? `, ${p.non2xx} non-2xx, ${p.errors} errors` : '';
  return `${Math.round(p.achievedRps)} req/s, p50 ${p.latencyMs.p50.toFixed(3)} ms, p99 ${p.latencyMs.p99.toFixed(3)} ms${bad}`;
}

async function run(argv: string[]): Promise<void> {
  const { plan, only, profile, nodeOptions } = parsePlan(argv);
  assertBuilt();
  const began = Date.now();
  const machine = machineInfo();
  const resultsDir = join(ROOT, 'bench', 'results');
  const profileDir = profile ? join(resultsDir, 'profiles') : undefined;
  mkdirSync(resultsDir, { recursive: true });
  const work = await mkdtemp(join(tmpdir(), 'ai-envelope-bench-'));
  cleanups.push(() => rm(work, { recursive: true, force: true }));

  say(`bench (${plan.mode}): targets ${only.join(', ')}; scratch ${work}`);
  const sim = await startSimulator();

  const targets: Target[] = [];
  for (const name of only) {
    say(`starting ${LABELS[name]}`);
    targets.push(await startTarget(name, sim, work, { nodeOptions, ...(profileDir ? { profileDir } : {}) }));
  }
  await new Promise((r) => setTimeout(r, 1_000));
  const rest: Record<string, number> = {};
  for (const t of targets) if (t.pids.length) rest[t.name] = rssMB(t.pids);

  const sent: Record<string, number> = {};
  const ok: Record<string, number> = {};
  const count = (p: PhaseResult) => {
    sent[p.target] = (sent[p.target] ?? 0) + p.sent;
    ok[p.target] = (ok[p.target] ?? 0) + Object.entries(p.statusCodes).reduce((s, [code, n]) => s + (code.startsWith('2') ? n : 0), 0);
  };

  say(`warm-up: ${plan.warmupSeconds} s closed loop each`);
  for (const t of targets) count(await runPhase(t, { connections: plan.maxConnections, seconds: plan.warmupSeconds }));

  // Every target idles in the same window: the machine's noise falls on all of them alike. The
  // first seconds after load are the collector and the compiler finishing what it left (a
  // sidecar wakes ~100 times in the first second, ~12 a second from the third on): not rest.
  const settle = plan.mode === 'quick' ? 2 : 5;
  say(`at rest: ${settle} s to settle, then ${plan.restSeconds} s with no traffic`);
  await new Promise((r) => setTimeout(r, settle * 1000));
  const before = targets.map((t) => ({ cpu: cpuSeconds(t.pids), switches: contextSwitches(t.pids) }));
  await new Promise((r) => setTimeout(r, plan.restSeconds * 1000));
  const idle: BenchResults['idle'] = {};
  targets.forEach((t, i) => {
    if (!t.pids.length) return;
    idle[t.name] = { cpuMsPerSecond: ((cpuSeconds(t.pids) - before[i]!.cpu) * 1000) / plan.restSeconds, wakeupsPerSecond: (contextSwitches(t.pids) - before[i]!.switches) / plan.restSeconds };
  });

  const rates: PhaseRecord[] = [];
  for (let round = 1; round <= plan.rounds; round++) {
    for (const rate of plan.rates) {
      for (const t of targets) {
        const { phase, record } = await measuredPhase(t, sim, { connections: plan.rateConnections, seconds: plan.rateSeconds, rate }, 250);
        count(phase);
        rates.push({ ...record, round });
        say(`  ${rate} req/s  ${t.name.padEnd(14)} ${brief(phase)}${plan.rounds > 1 ? ` (round ${round})` : ''}`);
      }
    }
  }

  const max: PhaseRecord[] = [];
  for (let round = 1; round <= plan.rounds; round++) {
    for (const t of targets) {
      const { phase, record } = await measuredPhase(t, sim, { connections: plan.maxConnections, seconds: plan.maxSeconds }, 250);
      count(phase);
      max.push({ ...record, round });
      say(`  max        ${t.name.padEnd(14)} ${brief(phase)}${plan.rounds > 1 ? ` (round ${round})` : ''}`);
    }
  }

  say(`streams: ${plan.streams} each, ${plan.streamConcurrency} at a time; simulator ${plan.upstreamLatencyMs} ms before answering, ${plan.streamDelayMs} ms between events`);
  await sim.setOptions({ streamDelayMs: plan.streamDelayMs, latencyMs: plan.upstreamLatencyMs });
  const streams = [];
  for (const t of targets) {
    const s = await runStreams(t, plan.streams, plan.streamConcurrency);
    sent[t.name] = (sent[t.name] ?? 0) + s.requests;
    ok[t.name] = (ok[t.name] ?? 0) + s.ok;
    streams.push(s);
    say(`  stream     ${t.name.padEnd(14)} TTFT p50 ${s.ttftMs.p50.toFixed(2)} ms, p99 ${s.ttftMs.p99.toFixed(2)} ms${s.failed ? `, ${s.failed} failed` : ''}`);
  }
  await sim.setOptions({ streamDelayMs: 0, latencyMs: 0 });

  const soak: SoakRecord[] = [];
  if (plan.soakSeconds > 0) {
    for (const t of targets.filter((x) => x.name.startsWith('envelope'))) {
      const maxRps = median(max.filter((m) => m.target === t.name).map((m) => m.achievedRps)) || 0;
      // Below saturation: a soak is about memory over many calls, not about queueing.
      const rate = Math.max(50, Math.min(plan.soakMaxRate, Math.floor((maxRps * 0.6) / 50) * 50));
      const seconds = t.name === 'envelope-full' ? plan.soakSeconds : plan.soakSecondsNoPolicy;
      say(`soak: ${t.name} at ${rate} req/s for ${seconds} s`);
      const span = { from: 0, to: 0 };
      const clock: Probe = { start: () => (span.from = performance.now()), stop: () => (span.to = performance.now()) };
      const { phase, record, rss } = await measuredPhase(t, sim, { connections: plan.rateConnections, seconds, rate }, 1_000, [clock]);
      count(phase);
      const gcs = (t.majorGCs?.() ?? []).filter((g) => g.at >= span.from && g.at <= span.to).map((g) => ({ t: (g.at - span.from) / 1000, mb: g.liveMB }));
      // The first fifth is the heap growing to its working size, not a trend.
      const settled = rss.samples.filter((s) => s.t >= seconds * 0.2);
      soak.push({
        target: t.name,
        phase: record,
        samples: rss.samples,
        slopeMBPerMinute: slopePerMinute(settled),
        startMB: rss.samples[0]?.mb ?? NaN,
        endMB: rss.samples.at(-1)?.mb ?? NaN,
        maxMB: rss.max(),
        liveHeapAfterMajorGC: gcs,
      });
      const live = gcs.length ? `; live heap after ${gcs.length} full GCs ${gcs[0]!.mb.toFixed(1)} → ${gcs.at(-1)!.mb.toFixed(1)} MB` : '';
      say(`  soak       ${t.name.padEnd(14)} ${brief(phase)}; RSS ${rss.samples[0]?.mb.toFixed(1)} → ${rss.samples.at(-1)?.mb.toFixed(1)} MB${live}`);
    }
  }

  say('stopping');
  for (const t of targets) await t.stop();
  const logs = [];
  for (const t of targets) {
    if (t.logFile) logs.push(await checkLog(t.name, t.logFile, sent[t.name] ?? 0, ok[t.name] ?? 0));
  }
  await sim.stop();
  const profiles: string[] = [];
  for (const t of targets) {
    if (!t.profileFile) continue;
    if (!existsSync(t.profileFile)) {
      say(`no CPU profile from ${t.name} (it must exit on SIGTERM to write one)`);
      continue;
    }
    const summary = formatHotspots(t.profileFile, 20);
    writeFileSync(t.profileFile.replace(/\.cpuprofile$/, '.txt'), `${summary}\n`);
    profiles.push(summary);
  }

  const results: BenchResults = {
    meta: { ...machine, date: new Date(began).toISOString(), durationSeconds: Math.round((Date.now() - began) / 1000), loadAverageAtEnd: loadavg().map((l) => Math.round(l * 100) / 100), plan, targets: only, profile },
    restMB: rest,
    idle,
    rates,
    max,
    streams,
    soak,
    logs,
  };
  const table = writeReport(results, resultsDir);
  process.stdout.write(`${table}\n`);
  for (const p of profiles) process.stdout.write(`\n${p}\n`);
  say(`written: bench/results/latest.md, latest.svg, latest.json${profileDir ? '; CPU profiles in bench/results/profiles' : ''}`);
}

const cleanups: (() => Promise<void>)[] = [];
let cleaning: Promise<void> | undefined;
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    await stopAll();
    for (const c of cleanups.reverse()) await c().catch(() => {});
  })();
  return cleaning;
}

process.on('exit', killAllNow);
for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
  process.once(signal, () => {
    say(`${signal}: stopping every process the bench started`);
    void cleanup().finally(() => process.exit(code));
  });
}

try {
  await run(process.argv.slice(2));
} catch (err) {
  say(`bench failed: ${(err as Error).stack ?? String(err)}`);
  process.exitCode = 1;
} finally {
  await cleanup();
}
// autocannon and undici can leave idle sockets and timers behind; the run is over.
process.exit();
