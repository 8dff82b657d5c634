import { ApiError } from './errors.ts';
import { json, type Reply } from './reply.ts';
import type { HandlerCtx } from './state.ts';

// Stable per-id timestamps so repeated listings are identical.
function createdFor(id: string): number {
  let h = 0;
  for (const c of id) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return 1_680_000_000 + (h % 60_000_000);
}

function model(id: string) {
  return { id, object: 'model', created: createdFor(id), owned_by: 'system' };
}

export function listModels(ctx: HandlerCtx): Reply {
  return json({ object: 'list', data: ctx.state.opts.models.map(model) });
}

export function retrieveModel(ctx: HandlerCtx): Reply {
  const id = ctx.params[0]!;
  if (!ctx.state.opts.models.includes(id)) {
    throw new ApiError(404, `The model '${id}' does not exist`, { param: 'model', code: 'model_not_found' });
  }
  return json(model(id));
}
