import type { AddressInfo } from 'node:net';
import { checkAnswers } from './answers.ts';
import { addCost, checkExtraCost } from './costs.ts';
import { FaultQueue } from './faults.ts';
import { createSimServer } from './server.ts';
import { applyOptions, DEFAULT_MODELS, type SimState } from './state.ts';
import type { Fault, Simulator, SimulatorOptions } from './types.ts';

export type {
  DelayFault,
  ErrorFault,
  Fault,
  InsufficientQuotaFault,
  MalformedFault,
  RecordedRequest,
  ResetFault,
  ResetMidStreamFault,
  Simulator,
  SimulatorOptions,
  StallMidStreamFault,
} from './types.ts';
export { DEFAULT_MODELS } from './state.ts';
export { loadAnswers, type ScriptedAnswer } from './answers.ts';
export { DEFAULT_PROJECT, type ExtraCost } from './costs.ts';
export { MODERATION_TRIGGERS } from './moderations.ts';
export { BROKEN_JSON_TRIGGER, LONG_TRIGGER, TOOL_TRIGGER, WRONG_JSON_TRIGGER } from './generate.ts';

/** Starts a local OpenAI-compatible API on loopback; resolves once it is listening. */
export async function startSimulator(opts: SimulatorOptions = {}): Promise<Simulator> {
  const state: SimState = {
    opts: { streamDelayMs: 0, latencyMs: 0, models: [...DEFAULT_MODELS], batchStepMs: 50, batchLinesPerStep: 0, batchWindowMs: 86_400_000, apiKeys: undefined, adminKeys: undefined, projects: {}, recordLimit: Infinity },
    requests: [],
    faults: new FaultQueue(),
    answers: [],
    files: new Map(),
    batches: new Map(),
    responses: new Map(),
    costs: new Map(),
  };
  applyOptions(state, opts);
  const closing = new AbortController();
  const server = createSimServer(state, closing.signal);
  const host = opts.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  let closed: Promise<void> | undefined;

  return {
    url: `http://${urlHost}:${port}/v1`,
    port,
    requests: state.requests,
    fault: (f: Fault) => state.faults.add(f),
    clearFaults: () => state.faults.clear(),
    setApiKeys: (keys) => applyOptions(state, { apiKeys: keys }),
    setOptions: (o) => applyOptions(state, o),
    bill: (cost) => addCost(state.costs, checkExtraCost(cost, Date.now())),
    script: (answers) => state.answers.push(...checkAnswers(answers)),
    reset: () => {
      // Emptied in place: callers may hold a reference to `requests`.
      state.requests.length = 0;
      state.faults.clear();
      state.answers = [];
    },
    close: () => {
      closed ??= new Promise<void>((resolve) => {
        // Wake sleeping handlers (delays, stalls) so no timer outlives the server.
        closing.abort();
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closed;
    },
  };
}
