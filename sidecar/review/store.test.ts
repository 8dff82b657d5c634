import { describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ReviewStore } from './store.ts';

const HOUR = 3_600_000;
const held = (over: Record<string, unknown> = {}) => ({ route: 'shop/triage', endpoint: 'chat.completions', model: 'gpt-4.1-mini', reason: 'output_invalid' as const, details: ['(root): not JSON'], request: { messages: [] }, answer: '{"category": "bill', ...over });
const dir = () => mkdtempSync(join(tmpdir(), 'ai-envelope-reviews-'));

describe('ReviewStore', () => {
  it('holds items pending, lists them oldest first, and takes one decision each', async () => {
    const s = await ReviewStore.open(undefined);
    const a = await s.add(held(), HOUR, 1000);
    const b = await s.add(held({ reason: 'moderation_flagged', answer: undefined }), HOUR, 2000);
    expect(a.id).toMatch(/^rev_[0-9a-f]{24}$/);
    expect(s.list(undefined, 3000).map((i) => i.id)).toEqual([a.id, b.id]);
    const approved = await s.decide(a.id, 'approve', { reviewer: 'ana' }, 3000);
    expect(approved).toMatchObject({ status: 'approved', decision: { reviewer: 'ana', answer: '{"category": "bill' } });
    const edited = await s.decide(b.id, 'edit', { answer: 'fixed' }, 3000);
    expect(edited).toMatchObject({ status: 'edited', decision: { answer: 'fixed' } });
    expect(s.list('pending', 3000)).toEqual([]);
    await expect(s.decide(a.id, 'reject', {}, 3000)).rejects.toMatchObject({ status: 409 });
    await expect(s.decide('rev_000000000000000000000000', 'reject', {}, 3000)).rejects.toMatchObject({ status: 404 });
    const rejected = await s.decide((await s.add(held(), HOUR, 4000)).id, 'reject', { note: 'no' }, 5000);
    expect(rejected.decision).not.toHaveProperty('answer');
  });

  it('keeps items and decisions across a restart, in its folder', async () => {
    const d = dir();
    const s = await ReviewStore.open(d, 0);
    const a = await s.add(held(), HOUR, 0);
    await s.decide(a.id, 'approve', {}, 10);
    await s.use(a.id);
    const pending = await s.add(held(), HOUR, 20);
    // A write cut short leaves a temporary file, never a half item.
    writeFileSync(join(d, `.${pending.id}.999.tmp`), '{"id": "rev_');
    const again = await ReviewStore.open(d, 30);
    expect(again.durable).toBe(true);
    expect(again.get(a.id, 30)).toMatchObject({ status: 'approved', decision: { used: true } });
    expect(again.get(pending.id, 30)?.status).toBe('pending');
    expect(again.list(undefined, 30)).toHaveLength(2);
  });

  it('forgets and deletes items past their retention', async () => {
    const d = dir();
    const s = await ReviewStore.open(d, 0);
    const old = await s.add(held(), HOUR, 0);
    const young = await s.add(held(), 3 * HOUR, 0);
    expect(s.get(old.id, 2 * HOUR)).toBeUndefined();
    expect(await s.sweep(2 * HOUR)).toBe(1);
    expect(readdirSync(d).filter((f) => f.endsWith('.json'))).toEqual([`${young.id}.json`]);
    expect((await ReviewStore.open(d, 4 * HOUR)).list(undefined, 4 * HOUR)).toEqual([]);
  });
});
