import { cancelBatch, createBatch, listBatches, retrieveBatch } from './batches.ts';
import { chatCompletions } from './chat.ts';
import { createEmbeddings } from './embeddings.ts';
import { deleteFile, fileContent, listFiles, retrieveFile, uploadFile } from './files.ts';
import { listModels, retrieveModel } from './models.ts';
import { createModeration } from './moderations.ts';
import { createResponse, getResponse } from './responses.ts';
import type { Handler } from './state.ts';

interface Route {
  method: string;
  pattern: RegExp;
  handler: Handler;
}

const ID = '([^/]+)';

const ROUTES: Route[] = [
  { method: 'POST', pattern: /^\/v1\/chat\/completions$/, handler: chatCompletions },
  { method: 'POST', pattern: /^\/v1\/responses$/, handler: createResponse },
  { method: 'GET', pattern: new RegExp(`^/v1/responses/${ID}$`), handler: getResponse },
  { method: 'POST', pattern: /^\/v1\/embeddings$/, handler: createEmbeddings },
  { method: 'POST', pattern: /^\/v1\/moderations$/, handler: createModeration },
  { method: 'GET', pattern: /^\/v1\/models$/, handler: listModels },
  { method: 'GET', pattern: new RegExp(`^/v1/models/${ID}$`), handler: retrieveModel },
  { method: 'POST', pattern: /^\/v1\/files$/, handler: uploadFile },
  { method: 'GET', pattern: /^\/v1\/files$/, handler: listFiles },
  { method: 'GET', pattern: new RegExp(`^/v1/files/${ID}$`), handler: retrieveFile },
  { method: 'GET', pattern: new RegExp(`^/v1/files/${ID}/content$`), handler: fileContent },
  { method: 'DELETE', pattern: new RegExp(`^/v1/files/${ID}$`), handler: deleteFile },
  { method: 'POST', pattern: /^\/v1\/batches$/, handler: createBatch },
  { method: 'GET', pattern: /^\/v1\/batches$/, handler: listBatches },
  { method: 'GET', pattern: new RegExp(`^/v1/batches/${ID}$`), handler: retrieveBatch },
  { method: 'POST', pattern: new RegExp(`^/v1/batches/${ID}/cancel$`), handler: cancelBatch },
];

/** Paths that run a model; they get rate-limit headers. */
export const MODEL_PATHS = new Set(['/v1/chat/completions', '/v1/responses', '/v1/embeddings', '/v1/moderations']);

export function findRoute(method: string, path: string): { handler: Handler; params: string[] } | undefined {
  for (const r of ROUTES) {
    if (r.method !== method) continue;
    const m = r.pattern.exec(path);
    if (m) return { handler: r.handler, params: m.slice(1).map(safeDecode) };
  }
  return undefined;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
