// node bench/floor.ts
// The bare Node proxy of bench/node-floor.mjs alone under full load: its CPU per call is what the
// sidecar's own work is measured above (README: Performance).
import { runPhase } from './load.ts';
import { CpuMeter } from './measure.ts';
import { startNodeFloor, startSimulator, stopAll } from './servers.ts';

const sim = await startSimulator();
try {
  const target = await startNodeFloor(sim);
  await runPhase(target, { connections: 64, seconds: 2 });
  // Measured as the bench measures a proxy: its own process's CPU over the phase.
  const cpu = new CpuMeter(target.pids);
  const r = await runPhase(target, { connections: 64, seconds: 5, probes: [cpu] });
  process.stdout.write(`bare node:http + undici proxy: ${Math.round(r.achievedRps)} req/s, ${Math.round((cpu.seconds * 1e6) / (r.ok + r.non2xx))} µs CPU per call, ${r.non2xx} non-2xx\n`);
} finally {
  await stopAll();
  await sim.stop();
}
process.exit(0);
