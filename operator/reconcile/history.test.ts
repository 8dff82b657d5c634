import { describe, expect, it } from 'vitest';
import { AIRoute, AIRouteStatus } from '../../crds/schema.ts';
import { HISTORY_LENGTH, nextHistory, specDigests } from './history.ts';

const spec = (over: Record<string, unknown> = {}) =>
  AIRoute.parse({ apiVersion: 'ai-envelope.dev/v1alpha1', kind: 'AIRoute', metadata: { name: 'r', namespace: 'shop' }, spec: { podSelector: { matchLabels: { app: 'a' } }, model: { default: 'gpt-4.1-mini' }, ...over } }).spec;
const T0 = Date.UTC(2026, 11, 6, 12, 0, 0);
/** The status a reconcile would have written for `generation` of `s`, after `before`. */
const seen = (before: AIRouteStatus | undefined, generation: number, s: ReturnType<typeof spec> | undefined, now = T0): AIRouteStatus => ({ observedGeneration: generation, ...nextHistory(before, generation, s, now) });

describe('nextHistory', () => {
  it('enters a new route as created, with the time it was seen', () => {
    expect(nextHistory(undefined, 1, spec(), T0 + 1500)).toEqual({ specDigests: specDigests(spec()), history: [{ generation: 1, time: '2026-12-06T12:00:01Z', changed: ['created'] }] });
  });

  it.each([
    ['model', { model: { default: 'gpt-4.1-nano' } }, ['model']],
    ['prompt', { prompt: { version: 'v4', instructions: 'Be brief.' } }, ['prompt']],
    ['tools and schema', { output: { allowedTools: ['lookup_order'], jsonSchema: { type: 'object' } } }, ['tools', 'schema']],
    ['safety', { input: { redact: ['email'] }, logging: { content: 'redacted' } }, ['safety']],
    ['something else', { timeouts: { requestSeconds: 5 } }, ['other']],
  ])('names what generation 2 changed: %s', (_name, over, changed) => {
    const first = seen(undefined, 1, spec());
    const second = nextHistory(first, 2, spec(over), T0 + 60_000);
    expect(second.history?.[0]).toEqual({ generation: 2, time: '2026-12-06T12:01:00Z', changed });
    expect(second.history?.[1]?.generation).toBe(1);
  });

  it('writes nothing new for a generation it has entered, so a reconcile is idempotent', () => {
    const first = seen(undefined, 1, spec());
    expect(nextHistory(first, 1, spec(), T0 + 999_000)).toEqual({ specDigests: first.specDigests, history: first.history });
  });

  it('keeps what it had while a spec cannot be parsed, and compares the next valid one with the last valid one', () => {
    const first = seen(undefined, 1, spec());
    const broken = seen(first, 2, undefined);
    expect(broken.history).toEqual(first.history);
    expect(nextHistory(broken, 3, spec({ prompt: { version: 'v2', instructions: 'x' } }), T0).history?.[0]).toMatchObject({ generation: 3, changed: ['prompt'] });
  });

  it('does not call a route it already served "created" when its status has no digests yet', () => {
    expect(nextHistory({ observedGeneration: 4 }, 5, spec(), T0)).toEqual({ specDigests: specDigests(spec()) });
  });

  it(`keeps the last ${HISTORY_LENGTH} generations`, () => {
    let status = seen(undefined, 1, spec());
    for (let g = 2; g <= 14; g++) status = seen(status, g, spec({ prompt: { version: `v${g}`, instructions: 'x' } }));
    expect(status.history?.map((e) => e.generation)).toEqual([14, 13, 12, 11, 10, 9, 8, 7, 6, 5]);
    // Still valid for the CRD's status schema.
    expect(AIRouteStatus.safeParse(status).success).toBe(true);
    expect(AIRouteStatus.safeParse({ ...status, history: [...(status.history ?? []), { generation: 1, time: 'x', changed: ['other'] }] }).success).toBe(false);
  });
});
