import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ReviewStore, type Reviews } from './store.ts';
import { RedisReviewStore } from './redis.ts';
import { startRedis } from '../../test/support/redis.ts';

const HOUR = 3_600_000;
const held = (over: Record<string, unknown> = {}) => ({ route: 'shop/triage', endpoint: 'chat.completions', model: 'gpt-4.1-mini', reason: 'output_invalid' as const, details: ['(root): not JSON'], request: { messages: [] }, answer: '{"category": "bill', ...over });
const dir = () => mkdtempSync(join(tmpdir(), 'ai-envelope-reviews-'));

let redis: Awaited<ReturnType<typeof startRedis>>;
const opened: Reviews[] = [];
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  for (const s of opened) await s.close?.();
  await redis?.stop();
});
const stores: Array<[string, () => Promise<Reviews>]> = [
  ['in memory', async () => ReviewStore.open(undefined)],
  ['in files', async () => ReviewStore.open(dir())],
  // A prefix per store, so the cases do not see each other's items.
  ['in Redis', async () => {
    const s = new RedisReviewStore(redis.url, `test:${randomBytes(4).toString('hex')}:`);
    opened.push(s);
    return s;
  }],
];

describe.each(stores)('review queue %s', (_name, open) => {
  it('holds items pending, lists them oldest first, and takes one decision each', async () => {
    const now = Date.now();
    const s = await open();
    const a = await s.add(held(), HOUR, now);
    const b = await s.add(held({ reason: 'moderation_flagged', answer: undefined }), HOUR, now + 1000);
    expect(a.id).toMatch(/^rev_[0-9a-f]{24}$/);
    expect((await s.list(undefined, now + 2000)).map((i) => i.id)).toEqual([a.id, b.id]);
    const approved = await s.decide(a.id, 'approve', { reviewer: 'ana' }, now + 2000);
    expect(approved).toMatchObject({ status: 'approved', decision: { reviewer: 'ana', answer: '{"category": "bill' } });
    expect(await s.get(a.id, now + 2000)).toEqual(approved);
    const edited = await s.decide(b.id, 'edit', { answer: 'fixed' }, now + 2000);
    expect(edited).toMatchObject({ status: 'edited', decision: { answer: 'fixed' } });
    expect(await s.list('pending', now + 2000)).toEqual([]);
    await expect(s.decide(a.id, 'reject', {}, now + 2000)).rejects.toMatchObject({ status: 409 });
    await expect(s.decide('rev_000000000000000000000000', 'reject', {}, now + 2000)).rejects.toMatchObject({ status: 404 });
    const rejected = await s.decide((await s.add(held(), HOUR, now + 3000)).id, 'reject', { note: 'no' }, now + 4000);
    expect(rejected.decision).not.toHaveProperty('answer');
  });

  it('releases an approved item once, however many ask at the same time', async () => {
    const s = await open();
    const pending = await s.add(held({ reason: 'moderation_flagged' }), HOUR);
    expect(await s.use(pending.id)).toBe(false);
    await s.decide(pending.id, 'approve', {});
    const tries = await Promise.all(Array.from({ length: 8 }, () => s.use(pending.id)));
    expect(tries.filter(Boolean)).toHaveLength(1);
    expect((await s.get(pending.id))?.decision?.used).toBe(true);
  });
});

describe('review queue in files', () => {
  it('keeps items and decisions across a restart', async () => {
    const d = dir();
    const s = await ReviewStore.open(d, 0);
    const a = await s.add(held(), HOUR, 0);
    await s.decide(a.id, 'approve', {}, 10);
    expect(await s.use(a.id)).toBe(true);
    const pending = await s.add(held(), HOUR, 20);
    // A write cut short leaves a temporary file, never a half item.
    writeFileSync(join(d, `.${pending.id}.999.tmp`), '{"id": "rev_');
    const again = await ReviewStore.open(d, 30);
    expect(again.durable).toBe(true);
    expect(await again.get(a.id, 30)).toMatchObject({ status: 'approved', decision: { used: true } });
    expect((await again.get(pending.id, 30))?.status).toBe('pending');
    expect(await again.list(undefined, 30)).toHaveLength(2);
  });

  it('forgets and deletes items past their retention', async () => {
    const d = dir();
    const s = await ReviewStore.open(d, 0);
    const old = await s.add(held(), HOUR, 0);
    const young = await s.add(held(), 3 * HOUR, 0);
    expect(await s.get(old.id, 2 * HOUR)).toBeUndefined();
    expect(await s.sweep(2 * HOUR)).toBe(1);
    expect(readdirSync(d).filter((f) => f.endsWith('.json'))).toEqual([`${young.id}.json`]);
    expect(await (await ReviewStore.open(d, 4 * HOUR)).list(undefined, 4 * HOUR)).toEqual([]);
  });
});

describe('review queue in Redis', () => {
  it('is one queue for every replica, and lets Redis expire items with their retention', async () => {
    const prefix = `test:${randomBytes(4).toString('hex')}:`;
    const [a, b] = [new RedisReviewStore(redis.url, prefix), new RedisReviewStore(redis.url, prefix)];
    opened.push(a, b);
    const item = await a.add(held(), 300);
    expect((await b.list()).map((i) => i.id)).toEqual([item.id]);
    await b.decide(item.id, 'reject', { reviewer: 'bo' });
    await expect(a.decide(item.id, 'approve', {})).rejects.toMatchObject({ status: 409 });
    expect((await a.get(item.id))?.status).toBe('rejected');
    await new Promise((r) => setTimeout(r, 400));
    expect(await a.get(item.id)).toBeUndefined();
    expect(await b.list()).toEqual([]);
  });
});
