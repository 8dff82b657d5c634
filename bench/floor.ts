// node bench/floor.ts [floor|floor-http|none|full] [--rate R] [--seconds N] [--runs K] [--node-options="..."]
// CPU per call of one proxy, measured as the bench measures it (the proxy's own process over the
// phase): the bare node:http + undici proxy of bench/node-floor.mjs by default, which is the floor
// the sidecar's own work is measured above (README: Performance); the same with node:http as its
// client (node-floor-http.mjs); or the sidecar without policies or with all of them. Closed loop
// by default; --rate for a fixed rate, where fixed costs per wake-up (syscalls, thread hand-offs)
// weigh more than under full load. --runs repeats the measurement in the same process, for a
// spread. --node-options: the proxy's heap flags (by default the injected ones of
// sidecar/runtime.ts, as in the bench), for A/B runs of heap settings.
// Also printed: how long the proxy's threads waited for a core per call (schedstat: on 2 shared
// cores that wait, not the proxy's own work, is much of what a fixed rate's p99 pays), and the
// proxy's RSS after the runs, anonymous and file-backed (the Node binary's pages are the latter).
import { readFileSync, readdirSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runPhase } from './load.ts';
import { CpuMeter } from './measure.ts';
import { startEnvelope, startNodeFloor, startSimulator, stopAll } from './servers.ts';
import { SIDECAR_NODE_OPTIONS } from '../sidecar/runtime.ts';

const { values, positionals } = parseArgs({
  args: process.argv.slice(2),
  allowPositionals: true,
  options: { rate: { type: 'string' }, seconds: { type: 'string', default: '5' }, runs: { type: 'string', default: '1' }, 'node-options': { type: 'string', default: SIDECAR_NODE_OPTIONS } },
});
const which = positionals[0] ?? 'floor';
const rate = values.rate === undefined ? undefined : Number(values.rate);
const connections = rate === undefined ? 64 : 20;
/** Nanoseconds all threads of a process have waited runnable for a core (schedstat's second field). */
function waitedNs(pid: number): number {
  let ns = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[1]);
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return ns;
}

const LABELS: Record<string, string> = {
  floor: 'bare node:http + undici proxy',
  'floor-http': 'bare node:http proxy (node:http client)',
  none: 'ai-envelope, no policy',
  full: 'ai-envelope, all policies',
};
if (!(which in LABELS)) throw new Error(`expected one of ${Object.keys(LABELS).join(', ')}, got '${which}'`);

const sim = await startSimulator();
try {
  const nodeOptions = values['node-options'];
  const target = which === 'floor' || which === 'floor-http' ? await startNodeFloor(sim, nodeOptions, which === 'floor' ? 'undici' : 'http') : await startEnvelope(which as 'none' | 'full', sim, await mkdtemp(join(tmpdir(), 'ai-envelope-cpu-')), { nodeOptions });
  await runPhase(target, { connections, seconds: 2, rate });
  for (let i = 0; i < Number(values.runs); i++) {
    const cpu = new CpuMeter(target.pids);
    const waited = waitedNs(target.pids[0]!);
    const r = await runPhase(target, { connections, seconds: Number(values.seconds), rate, probes: [cpu] });
    const waitUs = (waitedNs(target.pids[0]!) - waited) / 1e3 / (r.ok + r.non2xx);
    const label = LABELS[which] ?? which;
    process.stdout.write(`${label}${rate ? ` at ${rate} req/s` : ''}: ${Math.round(r.achievedRps)} req/s, ${Math.round((cpu.seconds * 1e6) / (r.ok + r.non2xx))} µs CPU per call, ${Math.round(waitUs)} µs waiting for a core per call, p50 ${r.latencyMs.p50.toFixed(2)} ms, p99 ${r.latencyMs.p99.toFixed(2)} ms, ${r.non2xx} non-2xx\n`);
  }
  const status = readFileSync(`/proc/${target.pids[0]!}/status`, 'utf8');
  const mb = (field: string) => (Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1]) / 1024).toFixed(1);
  process.stdout.write(`RSS after the runs: ${mb('VmRSS')} MB (anonymous ${mb('RssAnon')}, file-backed ${mb('RssFile')})\n`);
} finally {
  await stopAll();
  await sim.stop();
}
process.exit(0);
