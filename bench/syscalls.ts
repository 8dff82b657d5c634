// node bench/syscalls.ts [full|none|floor] [--rate R] [--seconds N]
// System calls per call of a proxy under load, by thread and by what they touch (a socket, the
// log, an eventfd, an inotify watch), traced by strace on its process. Socket writes are the
// largest single cost of a call (README: Performance), a hand-off to another thread costs a
// wake-up on each side, and these counts are exact where CPU time is noisy: they found the log
// written one line per libuv hand-off and a folder watch woken by every log write (ADR 0015).
// Needs strace (Debian's package). Closed loop by default; --rate for a fixed rate.
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runPhase } from './load.ts';
import { startEnvelope, startNodeFloor, startSimulator, stopAll } from './servers.ts';

const { values, positionals } = parseArgs({ args: process.argv.slice(2), allowPositionals: true, options: { rate: { type: 'string' }, seconds: { type: 'string', default: '3' } } });
const which = positionals[0] ?? 'full';
const rate = values.rate === undefined ? undefined : Number(values.rate);
const connections = rate === undefined ? 64 : 20;
const sim = await startSimulator();
try {
  const work = await mkdtemp(join(tmpdir(), 'ai-envelope-sys-'));
  const target = which === 'floor' ? await startNodeFloor(sim) : await startEnvelope(which as 'full' | 'none', sim, work);
  const pid = target.pids[0]!;
  await runPhase(target, { connections, seconds: 2, rate });
  const threads = new Map(readdirSync(`/proc/${pid}/task`).map((tid) => [tid, readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim()]));
  const strace = spawn('strace', ['-f', '-y', '-p', String(pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let trace = '';
  strace.stderr.setEncoding('utf8').on('data', (d: string) => (trace += d));
  await new Promise((r) => setTimeout(r, 500));
  const r = await runPhase(target, { connections, seconds: Number(values.seconds), rate });
  strace.kill('SIGINT');
  await new Promise((r) => strace.once('exit', r));
  // strace saw the whole phase, its ramp-up second too: every request written, not only the
  // answers counted in the measuring window (dividing by those overstated every figure by a third).
  const calls = r.sent;
  const counts = new Map<string, number>();
  for (const line of trace.split('\n')) {
    // "[pid 123] writev(26<TCPv6:[...]>, ..." or, for the thread strace attached first, "writev(...".
    const m = /^(?:\[pid\s+(\d+)\] )?([a-z_0-9]+)\((?:(\d+)<([^>]*)>)?/.exec(line);
    if (!m || line.includes('resumed>')) continue;
    const thread = threads.get(m[1] ?? String(pid)) ?? 'thread';
    const what = m[4] === undefined ? '' : m[4].startsWith('TCP') || m[4].startsWith('UNIX') || m[4].startsWith('socket') ? 'socket' : m[4].replace(/^anon_inode:\[?([^\]]*)\]?$/, '$1').replace(/^.*\//, '');
    const key = `${thread} ${m[2]}${what ? ` <${what}>` : ''}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  console.log(`${which}${rate ? ` at ${rate} req/s` : ', closed loop'}: ${calls} calls under strace; system calls per call:`);
  let total = 0;
  for (const [k, v] of [...counts].sort((a, b) => b[1] - a[1])) {
    total += v;
    if (v / calls >= 0.01) console.log(`  ${(v / calls).toFixed(2).padStart(6)}  ${k}`);
  }
  console.log(`  ${(total / calls).toFixed(2).padStart(6)}  in all`);
} finally {
  await stopAll();
  await sim.stop();
}
process.exit(0);
