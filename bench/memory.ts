// node bench/memory.ts [full|none] [--node-options "..."]
// Where the sidecar's resident memory goes: V8 heap spaces, code, external memory and the rest,
// at rest and right after closed-loop load.
import { mkdtemp } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { connectInspector } from './inspector.ts';
import { runPhase } from './load.ts';
import { freePort } from '../test/support/redis.ts';
import { SIDECAR_NODE_OPTIONS } from '../sidecar/runtime.ts';
import { startEnvelope, startSimulator, stopAll } from './servers.ts';
import type { EnvelopeProfile } from './envelope-config.ts';

const { values, positionals } = parseArgs({ args: process.argv.slice(2), allowPositionals: true, options: { 'node-options': { type: 'string', default: SIDECAR_NODE_OPTIONS }, seconds: { type: 'string', default: '10' } } });
const profile = (positionals[0] ?? 'full') as EnvelopeProfile;
const sim = await startSimulator();
const work = await mkdtemp(join(tmpdir(), 'ai-envelope-mem-'));
const port = await freePort();
const MB = (n: number) => (n / 1048576).toFixed(1);

// Resident kB per mapping, summed by what backs it (a file's segments by permission), so file
// pages the process touched (the node binary's code and read-only data) show apart from anonymous ones.
function largestMappings(pid: number): string[] {
  const sums = new Map<string, number>();
  let key = '';
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ (\S+) \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) key = `${head[2]!.split('/').pop() || 'anon'} ${head[1]}`;
    else if (line.startsWith('Rss:')) sums.set(key, (sums.get(key) ?? 0) + Number(/\d+/.exec(line)![0]));
  }
  return [...sums].sort((a, b) => b[1] - a[1]).slice(0, 8).map(([k, kb]) => `${k} ${(kb / 1024).toFixed(1)}`);
}
try {
  const target = await startEnvelope(profile, sim, work, { nodeOptions: `${values['node-options']} --inspect=127.0.0.1:${port}` });
  const inspector = await connectInspector(port);
  const call = inspector.call;
  await call('Runtime.enable');
  const snap = async (label: string) => {
    const expr = `(() => { const v8 = process.getBuiltinModule('node:v8'); const m = process.memoryUsage(); return JSON.stringify({ m, spaces: v8.getHeapSpaceStatistics().map(s => [s.space_name, s.space_size, s.space_used_size]), code: v8.getHeapCodeStatistics() }); })()`;
    const r = await call<{ result: { value: string } }>('Runtime.evaluate', { expression: expr });
    const d = JSON.parse(r.result.value) as { m: NodeJS.MemoryUsage; spaces: [string, number, number][]; code: { code_and_metadata_size: number; bytecode_and_metadata_size: number; external_script_source_size: number } };
    const status = readFileSync(`/proc/${target.pids[0]}/status`, 'utf8');
    const pick = (k: string) => Number(/\d+/.exec(status.split('\n').find((l) => l.startsWith(k)) ?? '')?.[0] ?? 0);
    console.log(`\n${label}: rss ${MB(d.m.rss)} MB (anon ${pick('RssAnon') / 1024 | 0} MB, file ${pick('RssFile') / 1024 | 0} MB), heap ${MB(d.m.heapTotal)} total / ${MB(d.m.heapUsed)} used, external ${MB(d.m.external)}, arrayBuffers ${MB(d.m.arrayBuffers)}`);
    console.log('  ' + d.spaces.filter((s) => s[1] > 0).map(([n, t, u]) => `${n.replace('_space', '')} ${MB(t)}/${MB(u)}`).join(', '));
    console.log(`  code+metadata ${MB(d.code.code_and_metadata_size)}, bytecode+metadata ${MB(d.code.bytecode_and_metadata_size)}, external script source ${MB(d.code.external_script_source_size)}`);
    console.log('  largest mappings: ' + largestMappings(target.pids[0]!).join(', '));
  };
  await new Promise((r) => setTimeout(r, 1000));
  await snap('at rest');
  await call('HeapProfiler.collectGarbage');
  await snap('at rest after a full GC');
  const phase = await runPhase(target, { connections: 64, seconds: Number(values.seconds) });
  await snap(`after ${phase.ok} requests of load`);
  inspector.close();
} finally {
  await stopAll();
}
