// Builds the deterministic value a structured-output reply carries for a JSON
// schema: strings "x", numbers 1 (or their minimum), booleans true, enums their
// first member, arrays one item, objects their required properties (all
// properties when none are listed as required).

type Schema = Record<string, unknown>;

const MAX_DEPTH = 8;

export function fillSchema(schema: unknown): unknown {
  const root = isObj(schema) ? schema : {};
  return fill(root, root, 0);
}

function fill(schema: Schema, root: Schema, depth: number): unknown {
  if (depth > MAX_DEPTH) return null;
  if (typeof schema.$ref === 'string') return fill(resolveRef(schema.$ref, root), root, depth + 1);
  if ('const' in schema) return schema.const;
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return schema.enum[0];
  for (const key of ['anyOf', 'oneOf', 'allOf'] as const) {
    const options = schema[key];
    if (Array.isArray(options)) {
      const first = options.find((o) => isObj(o) && o.type !== 'null') ?? options[0];
      if (isObj(first)) return fill(first, root, depth + 1);
    }
  }
  let type = schema.type;
  if (Array.isArray(type)) type = type.find((t) => t !== 'null') ?? 'null';
  if (type === undefined && isObj(schema.properties)) type = 'object';
  switch (type) {
    case 'string':
      return 'x';
    case 'integer':
    case 'number': {
      const min = typeof schema.minimum === 'number' ? schema.minimum : undefined;
      return min !== undefined && min > 1 ? Math.ceil(min) : 1;
    }
    case 'boolean':
      return true;
    case 'null':
      return null;
    case 'array': {
      const items = isObj(schema.items) ? schema.items : {};
      const count = Math.max(1, typeof schema.minItems === 'number' ? schema.minItems : 1);
      return Array.from({ length: count }, () => fill(items, root, depth + 1));
    }
    case 'object': {
      const props = isObj(schema.properties) ? schema.properties : {};
      const required = Array.isArray(schema.required) ? schema.required.filter((r) => typeof r === 'string') : [];
      const keys = required.length > 0 ? required : Object.keys(props);
      const out: Record<string, unknown> = {};
      for (const k of keys) {
        const prop = props[k];
        out[k] = fill(isObj(prop) ? prop : {}, root, depth + 1);
      }
      return out;
    }
    default:
      return 'x';
  }
}

function resolveRef(ref: string, root: Schema): Schema {
  if (!ref.startsWith('#/')) return {};
  let node: unknown = root;
  for (const part of ref.slice(2).split('/')) {
    const key = part.replaceAll('~1', '/').replaceAll('~0', '~');
    node = isObj(node) ? node[key] : undefined;
  }
  return isObj(node) ? node : {};
}

function isObj(v: unknown): v is Schema {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
