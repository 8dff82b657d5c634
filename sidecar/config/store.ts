// The config in force. Loads are atomic (one reference swap; a request keeps the route object it
// started with) and a config that fails to load never replaces the last good one.
import { watch, type FSWatcher } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import type { Logger } from 'pino';
import { configFromSources, type LoadResult } from '../../crds/render.ts';
import { formatProblem, isManifestName, readSources } from '../../crds/manifests.ts';
import { compileConfig, type RuntimeConfig } from './runtime.ts';
import type { KeyStore } from './keys.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import { warmTokenizers } from '../policy/tokens.ts';
import { needsRead, stampOf, type Stamp } from './stamp.ts';

/**
 * Whether a change in the watched folder can change the config: the config file itself, a
 * manifest of a config folder, or the symlink swap of a ConfigMap volume (kubelet writes a new
 * `..<timestamp>` folder and renames `..data` onto it). Anything else written beside the config
 * (a log, an editor's swap file) would otherwise wake the sidecar and reload it on every write.
 */
export function concernsConfig(name: string | Buffer | null, file: string | undefined): boolean {
  if (name === null) return true; // the platform does not say which file changed
  const n = String(name);
  if (n.startsWith('..')) return true;
  return file === undefined ? isManifestName(n) : n === file;
}

export class ConfigStore {
  current: RuntimeConfig | undefined;
  /** Why the newest files were refused, while the last good config stays in force. */
  lastError: string[] | undefined;
  private readonly path: string;
  private readonly secretsDir: string;
  private readonly keys: KeyStore;
  private readonly log: Logger;
  private readonly metrics: Metrics;
  private watcher: FSWatcher | undefined;
  private poll: NodeJS.Timeout | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private loading: Promise<void> | undefined;
  /** The raw files last seen: the poll only parses and validates when they change. */
  private lastText: string | undefined;
  /** The files as they were just before the last read: the poll reads again only once they move. */
  private lastStamp: Stamp | undefined;
  private again = false;
  private readonly onLoad: ((config: RuntimeConfig) => void) | undefined;

  constructor(opts: { path: string; secretsDir: string; keys: KeyStore; log: Logger; metrics: Metrics; onLoad?: (config: RuntimeConfig) => void }) {
    this.onLoad = opts.onLoad;
    this.path = opts.path;
    this.secretsDir = opts.secretsDir;
    this.keys = opts.keys;
    this.log = opts.log;
    this.metrics = opts.metrics;
  }

  /** Loads now; resolves when done (successfully or not). */
  reload(): Promise<void> {
    if (this.loading) {
      this.again = true;
      return this.loading;
    }
    this.loading = this.load().finally(() => {
      this.loading = undefined;
      if (this.again) {
        this.again = false;
        void this.reload();
      }
    });
    return this.loading;
  }

  /** Watches the file or folder (a ConfigMap volume swaps a symlink) and polls as a backstop. */
  async start(pollMs = 2000): Promise<void> {
    const info = await stat(this.path).catch(() => undefined);
    const isDir = info?.isDirectory() ?? false;
    const dir = isDir ? this.path : dirname(this.path);
    try {
      this.watcher = watch(dir, (_event, name) => {
        if (!concernsConfig(name, isDir ? undefined : basename(this.path))) return;
        clearTimeout(this.debounce);
        this.debounce = setTimeout(() => void this.reload(), 50);
      });
      this.watcher.on('error', () => this.watcher?.close());
    } catch {
      // No watcher (the folder may be missing for now): the poll still notices changes.
    }
    this.poll = setInterval(() => {
      if (needsRead(this.lastStamp, stampOf(this.path), Date.now())) void this.reload();
    }, pollMs);
    this.poll.unref();
  }

  stop(): void {
    this.watcher?.close();
    clearInterval(this.poll);
    clearTimeout(this.debounce);
  }

  private async load(): Promise<void> {
    const result = await this.read();
    if (!result) return;
    if (!result.ok) {
      const reasons = result.problems.map(formatProblem);
      const fresh = JSON.stringify(reasons) !== JSON.stringify(this.lastError);
      this.lastError = reasons;
      if (fresh) {
        this.metrics.configReloads.inc({ result: 'failure' });
        this.log.error(
          { event: 'config_rejected', problems: reasons, version_in_force: this.current?.version ?? null },
          this.current ? 'new config is invalid; keeping the last good config' : 'config is invalid; not ready',
        );
      }
      return;
    }
    this.lastError = undefined;
    if (result.config.version === this.current?.version) return;
    const next = compileConfig(result.config, this.secretsDir);
    // Load the tokenizers now, not on the first call of each model family.
    warmTokenizers(next.routes.flatMap((r) => [...r.spec.model.allowed, ...(r.spec.model.default ? [r.spec.model.default] : [])]));
    await this.keys.use(next.routes.flatMap((r) => [r.keyPath, r.userHashKeyPath, r.reviewTokenPath].filter((p): p is string => p !== null)));
    const previous = this.current?.version ?? null;
    this.current = next;
    this.onLoad?.(next);
    this.metrics.configReloads.inc({ result: 'success' });
    this.metrics.setConfigVersion(next.version);
    this.log.info({ event: 'config_loaded', version: next.version, previous, routes: next.routes.map((r) => r.id) }, 'config loaded');
  }

  /** The new config or its problems; undefined when the files are as last seen. */
  private async read(): Promise<LoadResult | undefined> {
    // Taken before the read: a change made while it runs moves the stamp, and the poll reads again.
    this.lastStamp = stampOf(this.path);
    try {
      const sources = await readSources(this.path);
      const text = sources.map((f) => `${f.file}\0${f.text}`).join('\0');
      if (text === this.lastText) return undefined;
      this.lastText = text;
      return configFromSources(this.path, sources);
    } catch (err) {
      this.lastText = undefined;
      // A missing file is read again once it appears (its stamp moves); any other failure, at the next poll.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.lastStamp = undefined;
      return { ok: false, problems: [{ file: this.path, document: 0, path: '', message: `cannot read: ${(err as Error).message}` }] };
    }
  }
}
