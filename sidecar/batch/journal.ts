// An append-only JSONL journal that survives crashes: every append is written and fdatasync'ed
// before it resolves, so an app that got a job id, or a batch whose budget was reserved, is on
// disk when the answer leaves. Appends are rare next to model calls (one per deferred call or
// batch event), so a sync each is affordable. On start the caller replays it and rewrites it
// with only what is still live (temp file, fsync, rename), which bounds its growth. Without a
// folder it keeps nothing.
import { mkdir, open, readFile, rename, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';

export class Journal<E> {
  private handle: FileHandle | undefined;
  private chain: Promise<void> = Promise.resolve();
  private readonly path: string | undefined;

  private constructor(path: string | undefined) {
    this.path = path;
  }

  /**
   * Opens `<dir>/<name>` and returns its events. A torn last line (a crash mid-append) is
   * skipped: its append never resolved, so nobody was told it happened.
   */
  static async open<E>(dir: string | undefined, name: string, onError: (err: Error) => void): Promise<{ journal: Journal<E>; events: E[] }> {
    if (!dir) return { journal: new Journal<E>(undefined), events: [] };
    await mkdir(dir, { recursive: true });
    const path = join(dir, name);
    const events: E[] = [];
    let text = '';
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') onError(err as Error);
    }
    let lineNo = 0;
    for (const line of text.split('\n')) {
      lineNo++;
      if (!line) continue;
      try {
        events.push(JSON.parse(line) as E);
      } catch {
        onError(new Error(`${path}:${lineNo}: unreadable journal line skipped`));
      }
    }
    return { journal: new Journal<E>(path), events };
  }

  get durable(): boolean {
    return this.path !== undefined;
  }

  append(event: E): Promise<void> {
    return this.run(async () => {
      if (!this.path) return;
      this.handle ??= await open(this.path, 'a');
      await this.handle.write(`${JSON.stringify(event)}\n`);
      await this.handle.datasync();
    });
  }

  /** Replaces the journal with these events, atomically. */
  rewrite(events: E[]): Promise<void> {
    return this.run(async () => {
      if (!this.path) return;
      await this.handle?.close();
      this.handle = undefined;
      const tmp = `${this.path}.tmp`;
      const h = await open(tmp, 'w');
      try {
        await h.write(events.map((e) => `${JSON.stringify(e)}\n`).join(''));
        await h.sync();
      } finally {
        await h.close();
      }
      await rename(tmp, this.path);
    });
  }

  close(): Promise<void> {
    return this.run(async () => {
      await this.handle?.close();
      this.handle = undefined;
    });
  }

  private run(fn: () => Promise<void>): Promise<void> {
    const next = this.chain.then(fn);
    // One failed write must not block the ones after it; the caller hears of its own failure.
    this.chain = next.catch(() => {});
    return next;
  }
}
