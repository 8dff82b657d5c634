// Key custody. Keys are read from the mounted Secret files and re-read when Kubernetes swaps the
// volume's `..data` symlink (a rotation), so a new key is used without a restart. A poll backs up
// the watcher, which can miss events on some volume types. Values stay in this module's map:
// they are handed to the upstream client per attempt and never logged or returned.
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import type { Metrics } from '../telemetry/metrics.ts';
import { needsRead, stampOf, type Stamp } from './stamp.ts';

interface Entry {
  value?: string;
  error?: string;
  /** The file as it was just before the last read: the poll reads again only once it moves. */
  stamp?: Stamp;
}

export class KeyStore {
  private readonly entries = new Map<string, Entry>();
  private readonly watchers = new Map<string, FSWatcher>();
  private poll: NodeJS.Timeout | undefined;
  private readonly log: Logger;
  private readonly metrics: Metrics;

  constructor(log: Logger, metrics: Metrics, pollMs = 2000) {
    this.log = log;
    this.metrics = metrics;
    this.poll = setInterval(() => void this.refreshAll(), pollMs);
    this.poll.unref();
  }

  /** The key files the current config needs; called on every config load. */
  async use(paths: string[]): Promise<void> {
    const wanted = new Set(paths);
    for (const path of [...this.entries.keys()]) if (!wanted.has(path)) this.entries.delete(path);
    const dirs = new Set([...wanted].map((p) => dirname(p)));
    for (const [dir, w] of this.watchers) {
      if (!dirs.has(dir)) {
        w.close();
        this.watchers.delete(dir);
      }
    }
    for (const dir of dirs) this.watchDir(dir);
    await Promise.all([...wanted].map((p) => this.refresh(p)));
  }

  /** The key for a route: its Secret file, or OPENAI_API_KEY for a route without a secretRef. */
  get(path: string | null): string | undefined {
    if (path === null) return process.env.OPENAI_API_KEY || undefined;
    return this.entries.get(path)?.value;
  }

  /** Key files that could not be read, with the reason (for /readyz and the logs). */
  problems(): string[] {
    const out: string[] = [];
    for (const [path, e] of this.entries) if (!e.value) out.push(`${path}: ${e.error ?? 'empty'}`);
    return out;
  }

  /** Re-reads one key file; true when its value changed. */
  async refresh(path: string): Promise<boolean> {
    const prior = this.entries.get(path);
    const before = prior?.value;
    const stamp = stampOf(path);
    let next: Entry;
    try {
      const value = (await readFile(path, 'utf8')).trim();
      next = value ? { value, stamp } : { error: 'the file is empty', stamp };
    } catch (err) {
      // A missing file is read again once it appears (its stamp moves); any other failure, at the next poll.
      const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
      next = missing ? { error: 'no such file', stamp } : { error: (err as Error).message };
    }
    // Keep serving with the last good key if a rotation leaves the file briefly unreadable.
    if (!next.value && before) next = { value: before, error: next.error };
    this.entries.set(path, next);
    const changed = next.value !== before;
    if (changed && before !== undefined) {
      this.metrics.keyReloads.inc({ result: 'success' });
      this.log.info({ event: 'key_rotated', path }, 'API key file changed; new calls use the new key');
    } else if (!next.value && next.error !== prior?.error) {
      this.metrics.keyReloads.inc({ result: 'failure' });
      this.log.warn({ event: 'key_unavailable', path, reason: next.error }, 'API key file cannot be read');
    }
    return changed;
  }

  close(): void {
    clearInterval(this.poll);
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
  }

  /** The backstop for a missed watch event: reads only the files whose stamp moved. */
  private async refreshAll(): Promise<void> {
    const now = Date.now();
    await Promise.all([...this.entries].filter(([path, e]) => needsRead(e.stamp, stampOf(path), now)).map(([path]) => this.refresh(path)));
  }

  private watchDir(dir: string): void {
    if (this.watchers.has(dir)) return;
    try {
      const w = watch(dir, () => {
        for (const path of this.entries.keys()) if (dirname(path) === dir) void this.refresh(path);
      });
      w.on('error', () => {
        w.close();
        this.watchers.delete(dir);
      });
      this.watchers.set(dir, w);
    } catch {
      // The folder may appear later (a Secret mounted after start): the poll covers it.
    }
  }
}
