import { ApiError, invalidParam, missingParam } from './errors.ts';
import { ids, nowSeconds } from './ids.ts';
import { multipartBoundary, parseMultipart } from './multipart.ts';
import { json, type Reply } from './reply.ts';
import type { HandlerCtx, SimState } from './state.ts';

export interface StoredFile {
  id: string;
  bytes: number;
  created_at: number;
  filename: string;
  purpose: string;
  data: Buffer;
}

const PURPOSES = new Set(['assistants', 'batch', 'fine-tune', 'vision', 'user_data', 'evals']);

export function fileObject(f: StoredFile) {
  return {
    id: f.id,
    object: 'file',
    bytes: f.bytes,
    created_at: f.created_at,
    expires_at: null,
    filename: f.filename,
    purpose: f.purpose,
    status: 'processed',
    status_details: null,
  };
}

export function storeFile(state: SimState, filename: string, purpose: string, data: Buffer): StoredFile {
  const f: StoredFile = { id: ids.file(), bytes: data.length, created_at: nowSeconds(), filename, purpose, data };
  state.files.set(f.id, f);
  return f;
}

export function uploadFile(ctx: HandlerCtx): Reply {
  const boundary = multipartBoundary(ctx.headers['content-type']);
  if (!boundary) throw new ApiError(400, 'Expected a multipart/form-data request body.', { param: 'file' });
  let parts;
  try {
    parts = parseMultipart(ctx.raw, boundary);
  } catch (e) {
    throw new ApiError(400, `Could not parse multipart form: ${(e as Error).message}`);
  }
  const file = parts.find((p) => p.name === 'file' && p.filename !== undefined);
  const purpose = parts.find((p) => p.name === 'purpose')?.data.toString('utf8');
  if (!file) throw missingParam('file');
  if (purpose === undefined) throw missingParam('purpose');
  if (!PURPOSES.has(purpose)) {
    throw invalidParam('purpose', `'${purpose}' is not one of ${[...PURPOSES].map((p) => `'${p}'`).join(', ')}.`);
  }
  if (purpose === 'batch' && !file.filename!.endsWith('.jsonl')) {
    throw new ApiError(400, 'Invalid file format for Batch API. Must be .jsonl', { param: 'file' });
  }
  // Copy out of the request buffer so the stored bytes do not pin it.
  return json(fileObject(storeFile(ctx.state, file.filename!, purpose, Buffer.from(file.data))));
}

function findFile(ctx: HandlerCtx): StoredFile {
  const id = ctx.params[0]!;
  const f = ctx.state.files.get(id);
  if (!f) throw new ApiError(404, `No such File object: ${id}`, { param: 'id' });
  return f;
}

export function listFiles(ctx: HandlerCtx): Reply {
  let files = [...ctx.state.files.values()];
  if (ctx.query.purpose) files = files.filter((f) => f.purpose === ctx.query.purpose);
  return json(page(files.map(fileObject), ctx.query, 10_000, 10_000));
}

export function retrieveFile(ctx: HandlerCtx): Reply {
  return json(fileObject(findFile(ctx)));
}

export function fileContent(ctx: HandlerCtx): Reply {
  const f = findFile(ctx);
  return { kind: 'bytes', status: 200, contentType: 'application/octet-stream', body: f.data };
}

export function deleteFile(ctx: HandlerCtx): Reply {
  const f = findFile(ctx);
  ctx.state.files.delete(f.id);
  return json({ id: f.id, object: 'file', deleted: true });
}

/** Cursor pagination as the real list endpoints do it: newest first, `after` an id, `has_more`. */
export function page<T extends { id: string; created_at: number }>(items: T[], query: Record<string, string>, defaultLimit: number, maxLimit: number) {
  // Insertion order breaks ties between items created in the same second.
  let sorted = items.map((item, i) => ({ item, i })).sort((a, b) => b.item.created_at - a.item.created_at || b.i - a.i).map((x) => x.item);
  if (query.order === 'asc') sorted = sorted.reverse();
  if (query.after) {
    const at = sorted.findIndex((x) => x.id === query.after);
    if (at >= 0) sorted = sorted.slice(at + 1);
  }
  const limit = Math.min(Math.max(Number(query.limit) || defaultLimit, 1), maxLimit);
  const data = sorted.slice(0, limit);
  return { object: 'list', data, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null, has_more: sorted.length > limit };
}
