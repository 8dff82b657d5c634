// One JSON file that survives restarts and crashes: every write goes to a temp file in the same
// folder, is fsynced and renamed over the old one, so a reader sees the old state or the new,
// never half of one. Writes are coalesced: at most one in flight, any number of changes during it
// cause exactly one more, and writes start at most once per `minIntervalMs`, so callers never
// wait on the disk and a busy sidecar does not spend its CPU on fsync (at 500 calls a second,
// writing after every change cost about a tenth of the process's CPU). A crash loses at most the
// changes of the last interval; a graceful stop flushes them.
import { open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';

/** At most one write a second: the spend a crash can lose is what a second of calls reserved. */
export const DEFAULT_MIN_INTERVAL_MS = 1000;

export class StateFile {
  readonly path: string;
  private readonly dir: string;
  private readonly onError: (err: Error) => void;
  private writing: Promise<void> | null = null;
  private dirty = false;
  private render: (() => string) | null = null;
  private readonly minIntervalMs: number;
  private lastWriteAt = -Infinity;
  /** Ends the wait before the next write early: set while a run waits out the interval. */
  private hurry: (() => void) | null = null;
  private urgent = false;
  /** Files written so far (for tests and metrics). */
  writes = 0;

  constructor(dir: string, onError: (err: Error) => void, minIntervalMs = DEFAULT_MIN_INTERVAL_MS) {
    this.dir = dir;
    this.path = join(dir, 'state.json');
    this.onError = onError;
    this.minIntervalMs = minIntervalMs;
  }

  /**
   * Reads and checks the file. Absent: undefined. Unreadable or failing `parse`: the file is moved
   * aside as state.json.corrupt-<ms>, the error reported, and undefined returned: a bad file must
   * cost the counts it held, not the sidecar.
   */
  async load<T>(parse: (raw: unknown) => T): Promise<T | undefined> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      await this.setAside(err as Error);
      return undefined;
    }
    try {
      return parse(JSON.parse(text));
    } catch (err) {
      await this.setAside(err as Error);
      return undefined;
    }
  }

  private async setAside(cause: Error): Promise<void> {
    const aside = `${this.path}.corrupt-${Date.now()}`;
    let moved = true;
    try {
      await rename(this.path, aside);
    } catch {
      moved = false;
    }
    this.onError(new Error(`state file ${this.path} could not be used (${cause.message}); ${moved ? `kept as ${aside}` : 'it could not be moved aside'}; starting with empty budgets`, { cause }));
  }

  /** Asks for the file to be written with what `render` returns when the write starts. */
  schedule(render: () => string): void {
    this.render = render;
    this.dirty = true;
    this.writing ??= this.run();
  }

  /** Resolves once everything scheduled so far is on disk (or has failed and been reported), without waiting out the interval. */
  async flush(): Promise<void> {
    while (this.writing) {
      this.urgent = true;
      this.hurry?.();
      await this.writing;
    }
    this.urgent = false;
  }

  private async run(): Promise<void> {
    // Let the changes of this turn of the event loop land in the same write.
    await new Promise((resolve) => setImmediate(resolve));
    while (this.dirty && this.render) {
      await this.pace();
      this.dirty = false;
      try {
        this.lastWriteAt = performance.now();
        await this.write(this.render());
      } catch (err) {
        this.onError(new Error(`could not write state file ${this.path}: ${(err as Error).message}`, { cause: err }));
      }
    }
    this.writing = null;
  }

  private async pace(): Promise<void> {
    const wait = this.lastWriteAt + this.minIntervalMs - performance.now();
    if (wait <= 0 || this.urgent) return;
    await new Promise<void>((resolve) => {
      // Unref'd: a pending write must not keep a finished process alive; stopping flushes instead.
      const timer = setTimeout(done, wait);
      timer.unref();
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.hurry = done;
    });
    this.hurry = null;
  }

  private async write(text: string): Promise<void> {
    const tmp = `${this.path}.tmp-${process.pid}`;
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(text);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, this.path);
    this.writes++;
    // The rename itself is durable only once the folder is synced; not every platform allows it.
    try {
      const d = await open(this.dir, 'r');
      try {
        await d.sync();
      } finally {
        await d.close();
      }
    } catch {
      /* best effort */
    }
  }
}
