// node bench/alloc.ts [full|none] [--seconds N] [--rate R] [--retained | --promoted]
// What one call allocates in the sidecar, and where: V8's sampling heap profiler, attached over
// the inspector to a sidecar under closed-loop load, counting objects collected since as well.
// Garbage per call is what the heap flags (sidecar/runtime.ts) turn into collections, and those
// are what the p99 pays; this is the figure to watch when the hot path changes.
// --retained: only what is still alive after the load and a full collection, by where it was
// allocated: what a call leaves behind (caches, windows, queues), which is what scavenges copy
// and what gets promoted. --promoted: what outlived the young generation (alive at the end or
// collected only by a full GC): the garbage that fills the old generation and brings on the full
// collections, by where it was allocated.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { connectInspector } from './inspector.ts';
import { runPhase } from './load.ts';
import { freePort } from '../test/support/redis.ts';
import { SIDECAR_NODE_OPTIONS } from '../sidecar/runtime.ts';
import { startEnvelope, startSimulator, stopAll } from './servers.ts';
import type { EnvelopeProfile } from './envelope-config.ts';

interface Frame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface SampleNode {
  callFrame: Frame;
  selfSize: number;
  children: SampleNode[];
}

const { values, positionals } = parseArgs({ args: process.argv.slice(2), allowPositionals: true, options: { seconds: { type: 'string', default: '3' }, rate: { type: 'string' }, retained: { type: 'boolean', default: false }, promoted: { type: 'boolean', default: false } } });
const retained = values.retained;
const promoted = values.promoted;
const profile = (positionals[0] ?? 'full') as EnvelopeProfile;
if (profile !== 'full' && profile !== 'none') throw new Error(`profile must be full or none, got '${profile}'`);
const seconds = Number(values.seconds);

const where = (url: string) => /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1] ?? (url.includes('/dist/') ? url.split('/dist/')[1] : url || '(native)');

const sim = await startSimulator();
const work = await mkdtemp(join(tmpdir(), 'ai-envelope-alloc-'));
const port = await freePort();
try {
  const target = await startEnvelope(profile, sim, work, { nodeOptions: `${SIDECAR_NODE_OPTIONS} --inspect=127.0.0.1:${port}` });
  await runPhase(target, { connections: 64, seconds: 2 });
  const inspector = await connectInspector(port);
  const call = inspector.call;
  await call('HeapProfiler.enable');
  await call('HeapProfiler.startSampling', { samplingInterval: 1024, includeObjectsCollectedByMajorGC: !retained, includeObjectsCollectedByMinorGC: !retained && !promoted });
  const phase = await runPhase(target, values.rate ? { connections: 20, seconds, rate: Number(values.rate) } : { connections: 64, seconds });
  if (retained) await call('HeapProfiler.collectGarbage');
  const { profile: sampled } = await call<{ profile: { head: SampleNode } }>('HeapProfiler.stopSampling');
  inspector.close();

  const calls = phase.ok + phase.non2xx;
  const byFunction = new Map<string, number>();
  const byProjectFrame = new Map<string, number>();
  let total = 0;
  // Self size per function, and per nearest project frame (what in the sidecar caused it).
  const walk = (n: SampleNode, owner: string) => {
    const f = n.callFrame;
    const name = `${f.functionName || '(anonymous)'} ${where(f.url)}:${f.lineNumber}`;
    const mine = f.url.includes('/dist/') ? name : owner;
    byFunction.set(name, (byFunction.get(name) ?? 0) + n.selfSize);
    byProjectFrame.set(mine, (byProjectFrame.get(mine) ?? 0) + n.selfSize);
    total += n.selfSize;
    for (const c of n.children) walk(c, mine);
  };
  walk(sampled.head, '(outside the sidecar)');
  const top = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]).slice(0, 20).map(([k, v]) => `  ${(v / calls / 1024).toFixed(2).padStart(6)} KB/call  ${k}`).join('\n');
  process.stdout.write(`${profile}: ${calls} calls in ${seconds} s, ${(total / calls / 1024).toFixed(1)} ${retained ? 'KB still alive per call after a full GC' : promoted ? 'KB per call outlived the young generation' : 'KB allocated per call'}\n`);
  process.stdout.write(`by function (self):\n${top(byFunction)}\nby nearest sidecar frame:\n${top(byProjectFrame)}\n`);
} finally {
  await stopAll();
  await sim.stop();
  await rm(work, { recursive: true, force: true });
}
process.exit(0);
