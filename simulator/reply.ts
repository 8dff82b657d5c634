export interface SseEvent {
  /** The `event:` field; chat streams have none. */
  event?: string;
  data: string;
}

/** What the rate-limit headers are computed from. */
export interface UsageNote {
  model: string;
  tokens: number;
  /** The usage object the call reported (streamed or not): what the simulated organization is billed (costs.ts). */
  billed?: unknown;
}

export type Reply =
  | { kind: 'json'; status: number; body: unknown; headers?: Record<string, string>; usage?: UsageNote }
  | { kind: 'bytes'; status: number; contentType: string; body: Buffer; headers?: Record<string, string> }
  | { kind: 'sse'; events: SseEvent[]; headers?: Record<string, string>; usage?: UsageNote };

export function json(body: unknown, usage?: UsageNote): Reply {
  return usage ? { kind: 'json', status: 200, body, usage } : { kind: 'json', status: 200, body };
}

export function sseData(payload: unknown, event?: string): SseEvent {
  const data = JSON.stringify(payload);
  return event === undefined ? { data } : { event, data };
}
