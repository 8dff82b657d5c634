import { mkdir, mkdtemp, rename, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { needsRead, SETTLE_MS, stampOf } from './stamp.ts';

let dir: string;
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  dir = await mkdtemp(join(tmpdir(), 'ai-envelope-stamp-'));
  return dir;
}

describe('stampOf', () => {
  it('stays put while a file is left alone, and moves on a same-size rewrite in place', async () => {
    const file = join(await tempDir(), 'apiKey');
    await writeFile(file, 'sk-test-aaaa');
    const first = stampOf(file);
    expect(stampOf(file)).toEqual(first);
    await writeFile(file, 'sk-test-bbbb');
    // The kernel's coarse clock may give both writes one time; a later mtime stands in for the tick.
    await utimes(file, new Date(), new Date(Date.now() + 5_000));
    expect(stampOf(file).key).not.toBe(first.key);
  });

  it("moves when a ConfigMap volume swaps its ..data symlink", async () => {
    const root = await tempDir();
    for (const [version, model] of [['..v1', 'gpt-4.1-mini'], ['..v2', 'gpt-4.1-nano']] as const) {
      await mkdir(join(root, version));
      await writeFile(join(root, version, 'routes.yaml'), `model: ${model}\n`);
    }
    await symlink('..v1', join(root, '..data'));
    await symlink('..data/routes.yaml', join(root, 'routes.yaml'));
    const before = stampOf(root);
    expect(before.key).toContain('routes.yaml=');
    await symlink('..v2', join(root, '..data_tmp'));
    await rename(join(root, '..data_tmp'), join(root, '..data'));
    expect(stampOf(root).key).not.toBe(before.key);
    expect(stampOf(join(root, 'routes.yaml')).key).not.toBe(stampOf(join(root, '..v1', 'routes.yaml')).key);
  });

  it("takes a folder's manifests only, as the config reader does", async () => {
    const root = await tempDir();
    await writeFile(join(root, 'routes.yaml'), 'a: 1\n');
    const before = stampOf(root);
    await writeFile(join(root, 'sidecar.log'), 'a line\n');
    await writeFile(join(root, '.routes.yaml.swp'), 'x');
    expect(stampOf(root)).toEqual(before);
    await writeFile(join(root, 'budgets.yml'), 'b: 2\n');
    expect(stampOf(root).key).not.toBe(before.key);
  });

  it('gives a missing file a stamp of its own, which moves when the file appears', async () => {
    const file = join(await tempDir(), 'routes.yaml');
    const missing = stampOf(file);
    expect(missing.key).toBe('error:ENOENT');
    expect(stampOf(file)).toEqual(missing);
    await writeFile(file, 'a: 1\n');
    expect(stampOf(file).key).not.toBe(missing.key);
  });
});

describe('needsRead', () => {
  const settled = { key: 'k', newestMs: 1_000 };
  it('reads the first time, when the stamp moved, and while the files are fresh', () => {
    expect(needsRead(undefined, settled, 1_000 + SETTLE_MS)).toBe(true);
    expect(needsRead(settled, { key: 'other', newestMs: 1_000 }, 1_000 + SETTLE_MS)).toBe(true);
    expect(needsRead(settled, settled, 1_000 + SETTLE_MS - 1)).toBe(true);
    expect(needsRead(settled, settled, 1_000 + SETTLE_MS)).toBe(false);
  });
});
