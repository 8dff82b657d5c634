import { ApiError, invalidJson, invalidParam, invalidType, missingParam, modelNotFound } from './errors.ts';
import type { HandlerCtx } from './state.ts';

export type Obj = Record<string, unknown>;

export function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The request's JSON object body, or the 400 the real API gives for anything else. */
export function jsonObject(ctx: HandlerCtx): Obj {
  if (ctx.jsonInvalid) throw invalidJson();
  if (ctx.json === undefined) throw invalidJson();
  if (!isObj(ctx.json)) throw invalidType('body', 'an object', ctx.json);
  return ctx.json;
}

export type ModelUse = 'generate' | 'embed' | 'moderate';

export function modelUse(model: string): ModelUse {
  if (model.startsWith('text-embedding')) return 'embed';
  if (model.includes('moderation')) return 'moderate';
  return 'generate';
}

export function requireModel(ctx: HandlerCtx, body: Obj, use: ModelUse): string {
  const model = body.model;
  if (model === undefined || model === null) throw missingParam('model');
  if (typeof model !== 'string') throw invalidType('model', 'a string', model);
  if (!ctx.state.opts.models.includes(model)) throw modelNotFound(model);
  if (modelUse(model) !== use) {
    throw new ApiError(400, `The model \`${model}\` is not supported with ${ctx.path}.`, { param: 'model' });
  }
  return model;
}

/** An optional integer field within [min, max]; the error wording follows the real API's. */
export function optionalInt(body: Obj, name: string, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  const v = body[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw invalidType(name, 'an integer', v);
  if (v < min) {
    throw invalidParam(name, `integer below minimum value. Expected a value >= ${min}, but got ${v} instead.`, 'integer_below_min_value');
  }
  if (v > max) {
    throw invalidParam(name, `integer above maximum value. Expected a value <= ${max}, but got ${v} instead.`, 'integer_above_max_value');
  }
  return v;
}

export function optionalBool(body: Obj, name: string): boolean | undefined {
  const v = body[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw invalidType(name, 'a boolean', v);
  return v;
}
