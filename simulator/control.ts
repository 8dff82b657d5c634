import type { IncomingMessage, ServerResponse } from 'node:http';
import { checkAnswers } from './answers.ts';
import { checkFault } from './faults.ts';
import { addCost, checkExtraCost } from './costs.ts';
import { applyOptions, type SimState } from './state.ts';
import type { SimulatorOptions } from './types.ts';

/**
 * The /_sim/* control API, for driving a simulator running in another process.
 * It needs no key and its requests are not recorded.
 */
export function handleControl(state: SimState, req: IncomingMessage, res: ServerResponse, path: string, raw: Buffer): void {
  const route = `${req.method} ${path}`;
  try {
    switch (route) {
      case 'POST /_sim/faults': {
        const parsed: unknown = JSON.parse(raw.toString('utf8'));
        // Validate every fault before queueing any, so a bad list changes nothing.
        const faults = (Array.isArray(parsed) ? parsed : [parsed]).map(checkFault);
        for (const f of faults) state.faults.add(f);
        return noContent(res);
      }
      case 'POST /_sim/answers': {
        // Validated as a whole first, like faults.
        state.answers.push(...checkAnswers(JSON.parse(raw.toString('utf8'))));
        return noContent(res);
      }
      case 'GET /_sim/answers':
        return sendJson(res, 200, state.answers);
      case 'DELETE /_sim/answers':
        state.answers = [];
        return noContent(res);
      case 'DELETE /_sim/faults':
        state.faults.clear();
        return noContent(res);
      case 'GET /_sim/requests':
        return sendJson(res, 200, state.requests);
      case 'DELETE /_sim/requests':
        state.requests.length = 0;
        return noContent(res);
      case 'POST /_sim/options': {
        const o: unknown = JSON.parse(raw.toString('utf8'));
        if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new Error('options must be a JSON object');
        applyOptions(state, o as Partial<SimulatorOptions>);
        return noContent(res);
      }
      case 'POST /_sim/costs': {
        const parsed: unknown = JSON.parse(raw.toString('utf8'));
        // Validated as a whole first, like faults.
        const costs = (Array.isArray(parsed) ? parsed : [parsed]).map((c) => checkExtraCost(c, Date.now()));
        for (const c of costs) addCost(state.costs, c);
        return noContent(res);
      }
      case 'GET /_sim/costs':
        return sendJson(res, 200, [...state.costs.values()].map((c) => ({ date: new Date(c.day * 1000).toISOString().slice(0, 10), projectId: c.projectId, lineItem: c.lineItem, amountUSD: c.nano / 1e9 })));
      case 'POST /_sim/reset':
        state.requests.length = 0;
        state.faults.clear();
        state.answers = [];
        return noContent(res);
      default:
        return sendJson(res, 404, controlError(`Unknown control route (${route})`));
    }
  } catch (e) {
    sendJson(res, 400, controlError((e as Error).message));
  }
}

function controlError(message: string) {
  return { error: { message, type: 'invalid_request_error', param: null, code: null } };
}

function noContent(res: ServerResponse): void {
  res.writeHead(204).end();
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}
