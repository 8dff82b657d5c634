// A small Kubernetes REST client over undici, with the server and credentials of config.ts.
// Watches are read line by line from the raw response so the supervisor above decides what an
// error, an end of stream or a silence means (see docs/adr/0011-operator-client-and-watches.md).
import { Agent, request } from 'undici';
import { loadClusterConfig, type ClusterConfig } from './config.ts';

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    generation?: number;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: OwnerReference[];
    deletionTimestamp?: string;
    [k: string]: unknown;
  };
  [k: string]: unknown;
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface KubeList<T> {
  metadata: { resourceVersion: string; continue?: string };
  items: T[];
}

/** An answer the API server gave with a non-2xx status; `reason` is the Status reason (Conflict, NotFound, Expired...). */
export class KubeError extends Error {
  readonly code: number;
  readonly reason: string | undefined;
  constructor(code: number, reason: string | undefined, message: string) {
    super(message);
    this.name = 'KubeError';
    this.code = code;
    this.reason = reason;
  }
}

export const isNotFound = (err: unknown) => err instanceof KubeError && err.code === 404;
export const isConflict = (err: unknown) => err instanceof KubeError && err.code === 409;
export const isGone = (err: unknown) => err instanceof KubeError && err.code === 410;

export type PatchType = 'merge' | 'apply' | 'json';
const PATCH_CONTENT: Record<PatchType, string> = {
  merge: 'application/merge-patch+json',
  apply: 'application/apply-patch+yaml',
  json: 'application/json-patch+json',
};

export interface RequestOpts {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  patch?: PatchType;
  accept?: string;
  signal?: AbortSignal;
  /** Per-request time limit; watches pass none (the supervisor bounds them). */
  timeoutMs?: number;
}

export class KubeClient {
  readonly server: string;
  private readonly config: ClusterConfig;
  private readonly agent: Agent;

  private constructor(config: ClusterConfig, agent: Agent) {
    this.config = config;
    this.agent = agent;
    this.server = config.server.replace(/\/+$/, '');
  }

  /** From a kubeconfig file, or the in-cluster ServiceAccount when no file is given. */
  static async create(kubeconfig?: string, opts: { connections?: number } = {}): Promise<KubeClient> {
    const config = loadClusterConfig(kubeconfig);
    const agent = new Agent({
      connections: opts.connections ?? 64,
      // Watches stay open for minutes; the supervisor, not a body timeout, decides when one is dead.
      bodyTimeout: 0,
      headersTimeout: 30_000,
      keepAliveTimeout: 30_000,
      connect: {
        ...(config.ca ? { ca: config.ca } : {}),
        ...(config.credentials.cert ? { cert: config.credentials.cert } : {}),
        ...(config.credentials.key ? { key: config.credentials.key } : {}),
        rejectUnauthorized: !config.insecure,
      },
    });
    return new KubeClient(config, agent);
  }

  private async headers(): Promise<Record<string, string>> {
    const token = await this.config.credentials.token?.();
    return token ? { authorization: `Bearer ${token}` } : {};
  }

  private url(path: string, query?: RequestOpts['query']): string {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) qs.set(k, String(v));
    const s = qs.toString();
    return `${this.server}${path}${s ? `?${s}` : ''}`;
  }

  private async send(method: string, path: string, opts: RequestOpts) {
    const headers: Record<string, string> = { ...(await this.headers()), accept: opts.accept ?? 'application/json' };
    let body: string | undefined;
    if (opts.body !== undefined) {
      body = JSON.stringify(opts.body);
      headers['content-type'] = opts.patch ? PATCH_CONTENT[opts.patch] : 'application/json';
    }
    const signals = [opts.signal, opts.timeoutMs ? AbortSignal.timeout(opts.timeoutMs) : undefined].filter((s): s is AbortSignal => s !== undefined);
    const res = await request(this.url(path, opts.query), {
      method: method as 'GET',
      headers,
      ...(body !== undefined ? { body } : {}),
      dispatcher: this.agent,
      ...(signals.length > 0 ? { signal: signals.length === 1 ? signals[0] : AbortSignal.any(signals) } : {}),
    });
    if (res.statusCode >= 300) {
      const text = await res.body.text().catch(() => '');
      let reason: string | undefined;
      let message = text.slice(0, 500);
      try {
        const status = JSON.parse(text) as { reason?: string; message?: string };
        reason = status.reason;
        message = status.message ?? message;
      } catch {
        // Not a Status object (a proxy's page, an empty body): keep the text.
      }
      throw new KubeError(res.statusCode, reason, `${method} ${path}: ${res.statusCode} ${message}`);
    }
    return res;
  }

  async call<T>(method: string, path: string, opts: RequestOpts = {}): Promise<T> {
    const res = await this.send(method, path, { timeoutMs: 30_000, ...opts });
    const text = await res.body.text();
    return (text ? JSON.parse(text) : undefined) as T;
  }

  get<T>(path: string, opts: RequestOpts = {}) {
    return this.call<T>('GET', path, opts);
  }

  /**
   * Streams a watch: calls onEvent for every JSON line until the server ends the response (resolves)
   * or it fails or is aborted (rejects).
   */
  async watch(path: string, query: RequestOpts['query'], signal: AbortSignal, onEvent: (event: { type: string; object: unknown }) => void, accept?: string): Promise<void> {
    const res = await this.send('GET', path, { query: { ...query, watch: true }, signal, ...(accept ? { accept } : {}) });
    let partial = '';
    for await (const chunk of res.body) {
      partial += (chunk as Buffer).toString('utf8');
      let nl: number;
      while ((nl = partial.indexOf('\n')) >= 0) {
        const line = partial.slice(0, nl).trim();
        partial = partial.slice(nl + 1);
        if (line) onEvent(JSON.parse(line) as { type: string; object: unknown });
      }
    }
  }

  async close(): Promise<void> {
    await this.agent.close().catch(() => undefined);
  }
}
