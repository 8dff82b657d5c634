// What changed in an AIRoute, generation by generation, kept in its status: which of the parts
// that move answer quality (model, prompt, tools, output schema, safety settings) a new
// generation changed. Digests of the defaulted spec are kept to compare the next one with.
import { contentHash } from '../../crds/canonical.ts';
import type { AIRoute, AIRouteStatus } from '../../crds/schema.ts';

export const CHANGE_KINDS = ['model', 'prompt', 'tools', 'schema', 'safety'] as const;
type ChangeKind = (typeof CHANGE_KINDS)[number];
type Digests = Record<ChangeKind, string>;
type Entry = NonNullable<AIRouteStatus['history']>[number];
export const HISTORY_LENGTH = 10;

export function specDigests(spec: AIRoute['spec']): Digests {
  const d = (v: unknown) => contentHash(v ?? null).slice(0, 12);
  return {
    model: d(spec.model),
    prompt: d(spec.prompt),
    tools: d(spec.output.allowedTools),
    schema: d({ jsonSchema: spec.output.jsonSchema, onInvalid: spec.output.onInvalid }),
    safety: d({ input: spec.input, moderation: spec.moderation, data: spec.data, logging: spec.logging }),
  };
}

const rfc3339 = (ms: number) => new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');

/**
 * The digests and history for the status, given what the status said before. A generation is
 * entered once; a route first seen by an operator that kept no digests yet starts its history at
 * its next change rather than claiming to be new.
 */
export function nextHistory(previous: AIRouteStatus | undefined, generation: number | undefined, spec: AIRoute['spec'] | undefined, now: number): Pick<AIRouteStatus, 'specDigests' | 'history'> {
  const keep = { ...(previous?.specDigests ? { specDigests: previous.specDigests } : {}), ...(previous?.history ? { history: previous.history } : {}) };
  // An unparseable spec has nothing to compare; an unchanged generation has nothing new.
  if (!spec || generation === undefined) return keep;
  const digests = specDigests(spec);
  if (previous?.observedGeneration === generation && previous.specDigests) return keep;
  const before = previous?.specDigests;
  let changed: Entry['changed'];
  if (before) {
    const kinds = CHANGE_KINDS.filter((k) => before[k] !== digests[k]);
    changed = kinds.length > 0 ? kinds : ['other'];
  } else if (previous?.observedGeneration === undefined) {
    changed = ['created'];
  } else {
    return { specDigests: digests, ...(previous.history ? { history: previous.history } : {}) };
  }
  const history = [{ generation, time: rfc3339(now), changed }, ...(previous?.history ?? []).filter((e) => e.generation !== generation)].slice(0, HISTORY_LENGTH);
  return { specDigests: digests, history };
}
