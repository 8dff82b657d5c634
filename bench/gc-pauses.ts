// node bench/gc-pauses.ts [full|none] [--rate 500] [--seconds 8] [--node-options=...]
// The pauses a sidecar's thread takes for garbage collection at a fixed rate, from --trace-gc:
// how many, how long, of which kind. These, not the pipeline's own work, are what the p99 pays.
import { mkdtemp } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runPhase } from './load.ts';
import { SIDECAR_NODE_OPTIONS } from '../sidecar/runtime.ts';
import { startEnvelope, startSimulator, stopAll } from './servers.ts';
import type { EnvelopeProfile } from './envelope-config.ts';

const { values, positionals } = parseArgs({
  args: process.argv.slice(2),
  allowPositionals: true,
  options: { 'node-options': { type: 'string', default: SIDECAR_NODE_OPTIONS }, seconds: { type: 'string', default: '8' }, rate: { type: 'string', default: '500' } },
});
const profile = (positionals[0] ?? 'full') as EnvelopeProfile;
const sim = await startSimulator();
const work = await mkdtemp(join(tmpdir(), 'ai-envelope-gc-'));
try {
  const target = await startEnvelope(profile, sim, work, { nodeOptions: values['node-options'] });
  await runPhase(target, { connections: 20, seconds: 3, rate: Number(values.rate) });
  const before = readFileSync(target.logFile!, 'utf8').length;
  const phase = await runPhase(target, { connections: 20, seconds: Number(values.seconds), rate: Number(values.rate) });
  const lines = readFileSync(target.logFile!, 'utf8').slice(before).split('\n');
  const kinds = new Map<string, number[]>();
  // The sidecar's own view of each call (request read to response end, upstream included): if
  // its p99 is far below the client's, the tail is spent outside the sidecar's handler.
  const inside: number[] = [];
  for (const line of lines) {
    if (line.startsWith('{')) {
      const ms = (JSON.parse(line) as { latency_ms?: number }).latency_ms;
      if (typeof ms === 'number') inside.push(ms);
      continue;
    }
    // [pid:0x...]    1234 ms: Scavenge 10.1 (12.0) -> 9.8 (12.0) MB, pooled: 0 MB, 0.52 / 0.00 ms  (average mu = ...
    const m = /ms: ([A-Za-z-]+(?: \(reduce\))?)[^,]*MB, (?:pooled: [\d.]+ MB, )?([\d.]+) \/ ([\d.]+) ms/.exec(line);
    if (!m) continue;
    const list = kinds.get(m[1]!) ?? [];
    list.push(Number(m[2]));
    kinds.set(m[1]!, list);
  }
  const p = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))] ?? 0;
  console.log(`${profile} at ${values.rate} req/s for ${values.seconds} s, NODE_OPTIONS="${values['node-options']}": p50 ${phase.latencyMs.p50} ms, p99 ${phase.latencyMs.p99} ms, ${phase.ok} ok`);
  console.log(`  inside the sidecar (its latency_ms, upstream included): p50 ${p(inside, 0.5)} ms, p99 ${p(inside, 0.99)} ms over ${inside.length} calls`);
  for (const [kind, xs] of kinds) {
    const total = xs.reduce((s, x) => s + x, 0);
    console.log(`  ${kind}: ${xs.length} pauses, total ${total.toFixed(1)} ms, p50 ${p(xs, 0.5).toFixed(2)} ms, max ${Math.max(...xs).toFixed(2)} ms`);
  }
} finally {
  await stopAll();
}
