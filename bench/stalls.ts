// node bench/stalls.ts [full|none] [--rate R] [--seconds N] [--min-ms M] [--save FILE]
// What runs when the sidecar's event loop is busy for long stretches at a fixed rate: the calls
// caught behind such a stretch are the p99. Samples the sidecar's CPU every 100 µs over the
// inspector during one fixed-rate phase, then lists every busy stretch longer than --min-ms with
// what the samples in it were doing (leaf function and nearest sidecar frame), and a tally of
// those stretches by their largest part. --save FILE.cpuprofile keeps the profile for
// bench/profile.ts (self time by module and function at that rate).
import { writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { connectInspector } from './inspector.ts';
import { runPhase } from './load.ts';
import { freePort } from '../test/support/redis.ts';
import { SIDECAR_NODE_OPTIONS } from '../sidecar/runtime.ts';
import { startEnvelope, startSimulator, stopAll } from './servers.ts';
import type { EnvelopeProfile } from './envelope-config.ts';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
}

const { values, positionals } = parseArgs({
  args: process.argv.slice(2),
  allowPositionals: true,
  options: { rate: { type: 'string', default: '500' }, seconds: { type: 'string', default: '8' }, 'min-ms': { type: 'string', default: '2' }, 'node-options': { type: 'string', default: SIDECAR_NODE_OPTIONS }, save: { type: 'string' } },
});
const which = (positionals[0] ?? 'full') as EnvelopeProfile;
const sim = await startSimulator();
const port = await freePort();
try {
  const target = await startEnvelope(which, sim, await mkdtemp(join(tmpdir(), 'ai-envelope-stalls-')), { nodeOptions: `${values['node-options']} --inspect=127.0.0.1:${port}` });
  const inspector = await connectInspector(port);
  const rate = Number(values.rate);
  await runPhase(target, { connections: 20, seconds: 3, rate });
  await inspector.call('Profiler.enable');
  await inspector.call('Profiler.setSamplingInterval', { interval: 100 });
  await inspector.call('Profiler.start');
  const phase = await runPhase(target, { connections: 20, seconds: Number(values.seconds), rate });
  const { profile } = await inspector.call<{ profile: Profile }>('Profiler.stop');
  inspector.close();
  console.log(`${which} at ${rate} req/s: p50 ${phase.latencyMs.p50.toFixed(2)} ms, p99 ${phase.latencyMs.p99.toFixed(2)} ms, ${phase.ok} ok`);
  if (values.save) writeFileSync(values.save, JSON.stringify(profile));
  report(profile, Number(values['min-ms']) * 1000);
} finally {
  await stopAll();
  await sim.stop();
}
process.exit(0);

function report(p: Profile, minUs: number): void {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const label = (n: Node) => `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url.replace(/^.*\/(node_modules\/|dist\/)/, '').replace(/^node:/, '')}:${n.callFrame.lineNumber}`;
  // The leaf, and the innermost frame in the sidecar's own code: "writev under sendAnswer".
  const describe = (id: number): string => {
    const leaf = byId.get(id)!;
    let at: number | undefined = id;
    while (at !== undefined && !byId.get(at)!.callFrame.url.includes('/dist/sidecar/')) at = parent.get(at);
    return at === undefined || at === id ? label(leaf) : `${label(leaf)} in ${label(byId.get(at)!)}`;
  };
  const stretches: { at: number; us: number; ids: number[] }[] = [];
  let t = 0;
  let start = 0;
  let ids: number[] = [];
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i]!;
    const idle = byId.get(p.samples[i]!)!.callFrame.functionName === '(idle)';
    if (!idle) {
      if (ids.length === 0) start = t;
      ids.push(p.samples[i]!);
    } else if (ids.length > 0) {
      if (t - start >= minUs) stretches.push({ at: start, us: t - start, ids });
      ids = [];
    }
  }
  const total = t;
  console.log(`${stretches.length} busy stretches of ${minUs / 1000} ms or more in ${(total / 1e6).toFixed(1)} s profiled`);
  const tally = new Map<string, number>();
  for (const s of stretches) {
    const counts = new Map<string, number>();
    for (const id of s.ids) counts.set(describe(id), (counts.get(describe(id)) ?? 0) + 1);
    const top = [...counts].sort((a, b) => b[1] - a[1]);
    tally.set(top[0]![0], (tally.get(top[0]![0]) ?? 0) + 1);
    console.log(`  at ${(s.at / 1e6).toFixed(3)} s, ${(s.us / 1000).toFixed(1)} ms, ${s.ids.length} samples: ${top.slice(0, 3).map(([k, c]) => `${c}× ${k}`).join('; ')}`);
  }
  console.log('largest part of each stretch:');
  for (const [k, c] of [...tally].sort((a, b) => b[1] - a[1])) console.log(`  ${c}× ${k}`);
}
