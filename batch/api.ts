// The few calls of OpenAI's Files and Batches API this command needs, over Node's fetch: the
// sidecar in front (or any OpenAI-compatible API) decides the key, limits and budget.
import type { BatchObject } from './progress.ts';

/** An answer that was not a success: the server's own words, as OpenAI's error body gives them. */
export class ServerError extends Error {
  readonly status: number;
  readonly code: string | null;
  constructor(status: number, code: string | null, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export interface ApiOptions {
  baseURL: string;
  /** Sent as `x-envelope-route`. */
  route?: string | undefined;
  apiKey?: string | undefined;
}

export class BatchApi {
  readonly #opts: ApiOptions;

  constructor(opts: ApiOptions) {
    this.#opts = { ...opts, baseURL: opts.baseURL.replace(/\/+$/, '') };
  }

  uploadFile(name: string, data: Uint8Array): Promise<{ id: string; bytes: number }> {
    const form = new FormData();
    form.append('purpose', 'batch');
    form.append('file', new Blob([data], { type: 'application/jsonl' }), name);
    return this.#json('POST', '/files', form);
  }

  createBatch(inputFileId: string, endpoint: string, metadata?: Record<string, string>): Promise<BatchObject> {
    return this.#json('POST', '/batches', JSON.stringify({ input_file_id: inputFileId, endpoint, completion_window: '24h', ...(metadata ? { metadata } : {}) }));
  }

  getBatch(id: string): Promise<BatchObject> {
    return this.#json('GET', `/batches/${encodeURIComponent(id)}`);
  }

  async fileContent(id: string): Promise<string> {
    return (await this.#call('GET', `/files/${encodeURIComponent(id)}/content`)).text();
  }

  async #json<T>(method: string, path: string, body?: string | FormData): Promise<T> {
    const res = await this.#call(method, path, body);
    const text = await res.text();
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new ServerError(res.status, null, `${method} ${path}: the server answered ${res.status} with a body that is not JSON: ${text.slice(0, 200)}`);
    }
  }

  async #call(method: string, path: string, body?: string | FormData): Promise<Response> {
    const headers: Record<string, string> = {};
    if (typeof body === 'string') headers['content-type'] = 'application/json';
    if (this.#opts.apiKey) headers.authorization = `Bearer ${this.#opts.apiKey}`;
    if (this.#opts.route) headers['x-envelope-route'] = this.#opts.route;
    const url = `${this.#opts.baseURL}${path}`;
    let res: Response;
    try {
      res = await fetch(url, { method, headers, ...(body !== undefined ? { body } : {}) });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new ServerError(0, cause?.code ?? null, `cannot reach ${url}: ${cause?.code ?? cause?.message ?? (err as Error).message}`);
    }
    if (res.ok) return res;
    throw await errorOf(res, `${method} ${path}`);
  }
}

async function errorOf(res: Response, what: string): Promise<ServerError> {
  const text = await res.text();
  let e: { message?: unknown; code?: unknown; type?: unknown } | undefined;
  try {
    e = (JSON.parse(text) as { error?: typeof e }).error;
  } catch {
    // Not OpenAI's error shape: the raw text says what there is to say.
  }
  const code = typeof e?.code === 'string' ? e.code : null;
  const label = code ?? (typeof e?.type === 'string' ? e.type : null);
  const message = typeof e?.message === 'string' ? e.message : text.slice(0, 300) || res.statusText;
  return new ServerError(res.status, code, `${what}: ${res.status}${label ? ` ${label}` : ''}: ${message}`);
}
