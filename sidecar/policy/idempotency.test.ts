import { describe, expect, it } from 'vitest';
import { IdempotencyCache, bodyHash } from './idempotency.ts';

const answer = (status = 200) => ({ status, headers: { 'content-type': 'application/json' }, body: Buffer.from('{"ok":true}') });
const h = bodyHash(Buffer.from('{"a":1}'));

describe('IdempotencyCache', () => {
  it('replays a stored answer for the same key and body, and refuses another body', async () => {
    const c = new IdempotencyCache();
    const first = await c.claim('r', 'k', h, 1000);
    expect(first.kind).toBe('first');
    if (first.kind === 'first') first.finish(answer());
    const again = await c.claim('r', 'k', h, 1000);
    expect(again.kind).toBe('replay');
    expect((await c.claim('r', 'k', bodyHash(Buffer.from('{"a":2}')), 1000)).kind).toBe('conflict');
    expect((await c.claim('other-route', 'k', h, 1000)).kind).toBe('first');
  });
  it('makes a concurrent duplicate wait for the first answer', async () => {
    const c = new IdempotencyCache();
    const first = await c.claim('r', 'k', h, 1000);
    const waiting = c.claim('r', 'k', h, 1000);
    let settled = false;
    void waiting.then(() => (settled = true));
    await new Promise((r) => setTimeout(r, 10));
    expect(settled).toBe(false);
    if (first.kind === 'first') first.finish(answer());
    expect((await waiting).kind).toBe('replay');
  });
  it('does not keep failures: the waiter and later calls try again', async () => {
    const c = new IdempotencyCache();
    const first = await c.claim('r', 'k', h, 1000);
    const waiting = c.claim('r', 'k', h, 1000);
    if (first.kind === 'first') first.finish(answer(503));
    expect((await waiting).kind).toBe('first');
  });
  it('forgets answers after the TTL and bounds its size', async () => {
    let now = 0;
    const c = new IdempotencyCache(2);
    const a = await c.claim('r', 'k', h, 100, () => now);
    if (a.kind === 'first') a.finish(answer());
    now = 101;
    expect((await c.claim('r', 'k', h, 100, () => now)).kind).toBe('first');
    await c.claim('r', 'k2', h, 100, () => now);
    await c.claim('r', 'k3', h, 100, () => now);
    expect(c.size).toBe(2);
  });
});
