import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { StateFile } from './state-file.ts';

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'ai-envelope-state-file-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const tick = () => new Promise((r) => setImmediate(r));
const fail = (err: Error) => {
  throw err;
};

describe('StateFile pacing', () => {
  it('writes the first change at once, then at most once per interval, and always the latest state', async () => {
    const dir = tempDir();
    // An interval far longer than the test: only the first write and the flush may happen.
    const file = new StateFile(dir, fail, 60_000);
    file.schedule(() => 'first');
    for (let i = 0; i < 20 && file.writes === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(file.writes).toBe(1);
    expect(readFileSync(join(dir, 'state.json'), 'utf8')).toBe('first');

    for (let i = 0; i < 50; i++) {
      file.schedule(() => `change ${i}`);
      await tick();
    }
    // Still inside the interval: the changes wait in memory.
    expect(file.writes).toBe(1);
    expect(readFileSync(join(dir, 'state.json'), 'utf8')).toBe('first');

    // A graceful stop does not wait out the interval, and writes only the newest state.
    await file.flush();
    expect(file.writes).toBe(2);
    expect(readFileSync(join(dir, 'state.json'), 'utf8')).toBe('change 49');
  });

  it('writes again by itself once the interval has passed', async () => {
    const dir = tempDir();
    const file = new StateFile(dir, fail, 50);
    file.schedule(() => 'a');
    await file.flush();
    file.schedule(() => 'b');
    for (let i = 0; i < 100 && file.writes < 2; i++) await new Promise((r) => setTimeout(r, 10));
    expect(file.writes).toBe(2);
    expect(readFileSync(join(dir, 'state.json'), 'utf8')).toBe('b');
  });
});
