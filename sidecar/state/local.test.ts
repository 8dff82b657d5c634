import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LocalStore } from './local.ts';
import type { BudgetSpec } from './types.ts';

const DAY = 86_400_000;
const budget = (key: string, limit: number, over: Partial<BudgetSpec> = {}): BudgetSpec => ({ key, limit, enforce: true, expiresAt: 30 * DAY, ...over });

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'ai-envelope-local-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function reserveOk(store: LocalStore, budgets: BudgetSpec[], amount: number, hold: number, now: number) {
  const r = await store.reserve(budgets, amount, hold, now);
  if (!r.ok) throw new Error(`refused by ${r.key}`);
  return r.ticket;
}

describe('LocalStore budgets', () => {
  it('reserves on every budget or on none', async () => {
    const store = new LocalStore();
    const team = budget('b:team', 100);
    const user = budget('b:team:u:x', 50);
    await reserveOk(store, [team, user], 40, 60_000, 0);
    const refused = await store.reserve([team, user], 40, 60_000, 0);
    expect(refused).toEqual({ ok: false, key: 'b:team:u:x', spent: 0, reserved: 40, limit: 50 });
    const levels = await store.levels(['b:team', 'b:team:u:x'], 0);
    expect(levels.get('b:team')).toEqual({ spent: 0, reserved: 40 });
    // A budget that does not enforce (alert, degrade) is counted but never refuses.
    const loose = budget('b:loose', 10, { enforce: false });
    await reserveOk(store, [loose], 40, 60_000, 0);
    expect((await store.levels(['b:loose'], 0)).get('b:loose')).toEqual({ spent: 0, reserved: 40 });
  });

  it('admits exactly floor(limit / amount) of 500 concurrent reservations', async () => {
    const store = new LocalStore();
    const b = budget('b:hot', 1000);
    const results = await Promise.all(Array.from({ length: 500 }, () => store.reserve([b], 7, 60_000, 0)));
    expect(results.filter((r) => r.ok)).toHaveLength(142);
    expect((await store.levels(['b:hot'], 0)).get('b:hot')).toEqual({ spent: 0, reserved: 994 });
  });

  it('settles lower, higher and at zero', async () => {
    const store = new LocalStore();
    const b = budget('b:s', 1_000_000);
    const t1 = await reserveOk(store, [b], 100, 60_000, 0);
    const t2 = await reserveOk(store, [b], 100, 60_000, 0);
    const t3 = await reserveOk(store, [b], 100, 60_000, 0);
    expect((await store.settle(t1, 60, 1)).get('b:s')).toEqual({ spent: 60, reserved: 200 });
    expect((await store.settle(t2, 150, 2)).get('b:s')).toEqual({ spent: 210, reserved: 100 });
    expect((await store.settle(t3, 0, 3)).get('b:s')).toEqual({ spent: 210, reserved: 0 });
    // Settling twice changes nothing.
    expect((await store.settle(t2, 150, 4)).get('b:s')).toEqual({ spent: 210, reserved: 0 });
  });

  it('counts an expired reservation as spent, and corrects it once when it settles late', async () => {
    const store = new LocalStore();
    const b = budget('b:e', 250);
    const late = await reserveOk(store, [b], 100, 1000, 0);
    expect((await store.levels(['b:e'], 999)).get('b:e')).toEqual({ spent: 0, reserved: 100 });
    expect((await store.levels(['b:e'], 1000)).get('b:e')).toEqual({ spent: 100, reserved: 0 });
    // The expired reservation still stands between new ones and the limit.
    await reserveOk(store, [b], 150, 1000, 1000);
    expect((await store.reserve([b], 1, 1000, 1000)).ok).toBe(false);
    expect((await store.settle(late, 30, 1500)).get('b:e')).toEqual({ spent: 30, reserved: 150 });
    expect((await store.settle(late, 30, 1600)).get('b:e')).toEqual({ spent: 30, reserved: 150 });
  });

  it('drops counters whose period has ended', async () => {
    const store = new LocalStore();
    await reserveOk(store, [budget('b:old', 100, { expiresAt: 1000 }), budget('b:new', 100)], 10, 60_000, 0);
    expect([...(await store.snapshot(999)).keys()].sort()).toEqual(['b:new', 'b:old']);
    expect([...(await store.snapshot(1000)).keys()]).toEqual(['b:new']);
  });

  it('rejects amounts that are not whole nano-dollars', async () => {
    const store = new LocalStore();
    await expect(store.reserve([budget('b:x', 100)], 1.5, 1000, 0)).rejects.toThrow(RangeError);
    await expect(store.reserve([budget('b:x', 100)], -1, 1000, 0)).rejects.toThrow(RangeError);
  });
});

describe('LocalStore windows', () => {
  it('admits and adjusts through the shared window rule', async () => {
    const store = new LocalStore();
    const w = { key: 'rl:r:tpm', windowMs: 60_000, bucketMs: 1000, limit: 100, cost: 80 };
    const first = await store.admit([w], 0);
    if (!first.admitted) throw new Error('refused');
    expect((await store.admit([w], 0)).admitted).toBe(false);
    await store.adjust(first.ticket, 'rl:r:tpm', -60, 10);
    expect((await store.admit([w], 10)).admitted).toBe(true);
  });
});

describe('LocalStore persistence', () => {
  it('keeps spent across a restart and counts outstanding reservations as spent', async () => {
    const dir = tempDir();
    const b = budget('b:p', 10_000);
    const one = await LocalStore.open({ stateDir: dir, now: 0 });
    const t = await reserveOk(one, [b], 300, 60_000, 0);
    await one.settle(t, 120, 1);
    await reserveOk(one, [b], 500, 60_000, 2); // the process dies with this call in flight
    await one.admit([{ key: 'rl:r:rpm', windowMs: 60_000, bucketMs: 1000, limit: 1, cost: 1 }], 2);
    await one.flush();

    const two = await LocalStore.open({ stateDir: dir, now: 3 });
    expect((await two.levels(['b:p'], 3)).get('b:p')).toEqual({ spent: 620, reserved: 0 });
    // Windows are not persisted.
    expect((await two.admit([{ key: 'rl:r:rpm', windowMs: 60_000, bucketMs: 1000, limit: 1, cost: 1 }], 3)).admitted).toBe(true);
    await two.close();
    // The conversion was itself written, so a third start does not count those reservations again.
    const three = await LocalStore.open({ stateDir: dir, now: 4 });
    expect((await three.levels(['b:p'], 4)).get('b:p')).toEqual({ spent: 620, reserved: 0 });
    await three.close();
  });

  it('sets a corrupt state file aside, reports it and starts empty', async () => {
    for (const content of ['{"version":1,"budgets":{"b:x":{"spent":', '{"version":1,"budgets":{"b:x":{"spent":-5,"expiresAt":1,"reservations":{}}}}']) {
      const dir = tempDir();
      writeFileSync(join(dir, 'state.json'), content);
      const errors: Error[] = [];
      const store = await LocalStore.open({ stateDir: dir, onError: (e) => errors.push(e), now: 0 });
      expect(errors).toHaveLength(1);
      expect(errors[0]?.message).toMatch(/corrupt-\d+/);
      const aside = readdirSync(dir).filter((f) => f.startsWith('state.json.corrupt-'));
      expect(aside).toHaveLength(1);
      expect(readFileSync(join(dir, aside[0] as string), 'utf8')).toBe(content);
      expect((await store.snapshot(0)).size).toBe(0);
      // And it goes on persisting normally.
      await reserveOk(store, [budget('b:y', 100)], 5, 60_000, 0);
      await store.flush();
      expect(JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')).budgets['b:y'].reservations).toBeTruthy();
    }
  });

  it('coalesces writes: many changes, few files, the last state on disk', async () => {
    const dir = tempDir();
    const store = await LocalStore.open({ stateDir: dir, now: 0 });
    const b = budget('b:c', 1e12);
    for (let i = 0; i < 300; i++) {
      const t = await reserveOk(store, [b], 10, 60_000, i);
      await store.settle(t, 1, i);
      if (i % 3 === 0) await new Promise((r) => setImmediate(r));
    }
    await store.flush();
    expect(store.persistWrites).toBeGreaterThan(0);
    expect(store.persistWrites).toBeLessThan(60);
    const saved = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8'));
    expect(saved.budgets['b:c']).toMatchObject({ spent: 300, reservations: {} });
    // No temp files left behind.
    expect(readdirSync(dir)).toEqual(['state.json']);
  });
});

describe('LocalStore journal', () => {
  it('records every change to spent until a batch is confirmed, across a restart', async () => {
    const dir = tempDir();
    const store = await LocalStore.open({ stateDir: dir, journal: true, now: 0 });
    const a = budget('b:j', 10_000);
    const t = await reserveOk(store, [a], 100, 1000, 0);
    await store.settle(t, 40, 10);
    const expiring = await reserveOk(store, [a], 70, 1000, 10);
    await store.levels(['b:j'], 2000); // swept into spent
    store.raiseSpent('b:j', 5000, a.expiresAt, 2000); // a level learnt elsewhere: not journalled
    store.addSpent('b:j', 9, a.expiresAt, 2000, true);
    await store.settle(expiring, 20, 2001); // corrects the swept 70 to 20
    const batch = store.journalBatch();
    expect(batch?.entries).toEqual([{ key: 'b:j', delta: 40 + 70 + 9 - 50, expiresAt: a.expiresAt }]);
    // Until confirmed, the same batch (same id) comes back; new spend waits for the next one.
    store.addSpent('b:j', 1, a.expiresAt, 2002, true);
    await store.flush();
    const reopened = await LocalStore.open({ stateDir: dir, journal: true, now: 2003 });
    const again = reopened.journalBatch();
    expect(again?.id).toBe(batch?.id);
    reopened.confirmJournal(again?.id as string);
    expect(reopened.journalBatch()?.entries).toEqual([{ key: 'b:j', delta: 1, expiresAt: a.expiresAt }]);
    // 40 + 70 raised to 5000, + 9, - 50, + 1.
    expect((await reopened.levels(['b:j'], 2003)).get('b:j')?.spent).toBe(4960);
    await Promise.all([store.close(), reopened.close()]);
  });
});

describe('durable reservations', () => {
  it('stay reserved across a restart until their hold ends, and settle then', async () => {
    const dir = tempDir();
    const b = budget('b:d', 10_000);
    const one = await LocalStore.open({ stateDir: dir, now: 0 });
    const r = await one.reserve([b], 800, 86_400_000, 0, { durable: true });
    if (!r.ok) throw new Error('refused');
    await one.flush();
    const two = await LocalStore.open({ stateDir: dir, now: 10 });
    expect((await two.levels(['b:d'], 10)).get('b:d')).toEqual({ spent: 0, reserved: 800 });
    // The batch settles after the restart: its real cost replaces the reservation.
    expect((await two.settle(r.ticket, 300, 20)).get('b:d')).toEqual({ spent: 300, reserved: 0 });
    await two.close();
  });
});
