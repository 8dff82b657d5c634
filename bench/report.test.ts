// The report's arithmetic over fixed-rate rounds: added latency paired within a round, then the
// median round. Made-up phases, so each figure is known in advance.
import { describe, expect, it } from 'vitest';
import { derive, median, type BenchResults, type PhaseRecord } from './report.ts';

function phase(target: string, round: number, p99: number, achievedRps = 500): PhaseRecord {
  return {
    target, rate: 500, round, connections: 20, seconds: 8, sent: 4000, ok: 4000, non2xx: 0, errors: 0, achievedRps,
    latencyMs: { p50: p99 / 4, p90: p99 / 2, p99, max: p99 * 2, mean: p99 / 3, count: 4000 },
    statusCodes: { '200': 4000 }, cpuSeconds: 1, cpuUsPerRequest: 100 + round, simulatorCpuUsPerRequest: 50, rssMaxMB: 100,
  } as PhaseRecord;
}

function results(rates: PhaseRecord[], max: PhaseRecord[] = []): BenchResults {
  return { rates, max, streams: [], soak: [], logs: [], restMB: {}, meta: { plan: { rounds: 3 } } } as unknown as BenchResults;
}

describe('median', () => {
  it('takes the middle value, or the mean of the middle two, and skips what was not measured', () => {
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([Number.NaN, 7])).toBe(7);
    expect(median([])).toBeNaN();
  });
});

describe('fixed-rate rounds', () => {
  it('subtract direct from the same round before taking the median', () => {
    // Round 2 is a bad minute for everything: paired, it adds no more than the others.
    const d = derive(results([phase('direct', 1, 0.4), phase('envelope-full', 1, 2.4), phase('direct', 2, 6.0), phase('envelope-full', 2, 8.2), phase('direct', 3, 0.5), phase('envelope-full', 3, 3.0)]));
    expect(d.addedP99Rounds(500, 'envelope-full').map((x) => Number(x.toFixed(2)))).toEqual([2.0, 2.2, 2.5]);
    expect(d.addedP99(500, 'envelope-full')).toBeCloseTo(2.2, 10);
    expect(d.cpuAt500('envelope-full')).toBe(102);
  });

  it('call a target saturated when its median round fell short of the rate', () => {
    const d = derive(results([phase('nginx', 1, 1, 500), phase('nginx', 2, 1, 300), phase('nginx', 3, 1, 490), phase('portkey', 1, 1, 300), phase('portkey', 2, 1, 310), phase('portkey', 3, 1, 500)]));
    expect(d.saturated(500, 'nginx')).toBe(false);
    expect(d.saturated(500, 'portkey')).toBe(true);
  });
});

describe('max-throughput rounds', () => {
  it('compare with nginx within each round, then take the median ratio', () => {
    const max = (target: string, round: number, rps: number) => ({ ...phase(target, round, 1, rps), rate: null }) as unknown as PhaseRecord;
    // nginx has a fast round 2; the sidecar a slow round 3: paired, neither decides the ratio.
    const d = derive(results([], [max('nginx', 1, 16_000), max('envelope-full', 1, 8_000), max('nginx', 2, 20_000), max('envelope-full', 2, 9_000), max('nginx', 3, 16_000), max('envelope-full', 3, 4_000)]));
    expect(d.maxRatioRounds('envelope-full', 'nginx')).toEqual([0.5, 0.45, 0.25]);
    expect(d.maxRatio('envelope-full', 'nginx')).toBe(0.45);
    expect(d.maxRps('envelope-full')).toBe(8_000);
    expect(d.cpuAtMax('envelope-full')).toBe(102);
  });
});
