// node bench/profile.ts FILE.cpuprofile [--top N]
// Where a sidecar's CPU went, from a V8 profile written under `npm run bench -- --profile`:
// self time by function and by module (a project file, a package, or Node itself), so the
// cost of a policy can be read without opening DevTools. Also used by main.ts after a profiled run.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface Hotspot {
  name: string;
  ms: number;
  share: number;
}

/** Groups a script URL the way an engineer looks for it: the project file, or the package, or Node. */
function moduleOf(url: string): string {
  if (!url) return '(V8 / native)';
  if (url.startsWith('node:')) return 'node internals';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  const own = /\/(dist|bench)\/(.+)$/.exec(url);
  return own ? own[2]!.replace(/\.js$/, '.ts') : url;
}

function rank(totals: Map<string, number>, all: number, top: number): Hotspot[] {
  return [...totals]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([name, us]) => ({ name, ms: us / 1000, share: us / all }));
}

export function hotspots(file: string, top = 15): { totalMs: number; idleShare: number; byFunction: Hotspot[]; byModule: Hotspot[] } {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const frames = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  const byFunction = new Map<string, number>();
  const byModule = new Map<string, number>();
  let all = 0;
  let idle = 0;
  profile.samples.forEach((id, i) => {
    const us = profile.timeDeltas[i] ?? 0;
    const f = frames.get(id);
    if (!f) return;
    all += us;
    if (f.functionName === '(idle)') {
      idle += us;
      return;
    }
    const fn = `${f.functionName || '(anonymous)'} ${moduleOf(f.url)}${f.url ? `:${f.lineNumber + 1}` : ''}`;
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + us);
    const mod = f.functionName === '(garbage collector)' ? '(garbage collector)' : moduleOf(f.url);
    byModule.set(mod, (byModule.get(mod) ?? 0) + us);
  });
  const busy = all - idle;
  return { totalMs: all / 1000, idleShare: all ? idle / all : 0, byFunction: rank(byFunction, busy, top), byModule: rank(byModule, busy, top) };
}

export function formatHotspots(file: string, top = 15): string {
  const h = hotspots(file, top);
  const line = (x: Hotspot) => `  ${(x.share * 100).toFixed(1).padStart(5)}%  ${x.ms.toFixed(0).padStart(7)} ms  ${x.name}`;
  return [
    `${file}: ${(h.totalMs / 1000).toFixed(1)} s profiled, ${(h.idleShare * 100).toFixed(0)}% idle; shares are of the busy time`,
    'by module (self time):',
    ...h.byModule.map(line),
    'by function (self time):',
    ...h.byFunction.map(line),
  ].join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values, positionals } = parseArgs({ options: { top: { type: 'string', default: '15' } }, allowPositionals: true });
  if (positionals.length === 0) {
    process.stderr.write('Usage: node bench/profile.ts FILE.cpuprofile [--top N]\n');
    process.exit(2);
  }
  for (const file of positionals) process.stdout.write(`${formatHotspots(file, Number(values.top))}\n\n`);
}
