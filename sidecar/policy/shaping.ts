// What the envelope changes in a request before it leaves the pod: less data (store, metadata),
// no raw user ids (a keyed hash instead), and the route's versioned prompt as the stable prefix.
import { createHmac } from 'node:crypto';
import type { Endpoint } from '../../crds/schema.ts';

/** `data.store` forces the Responses/Chat `store` flag; `dropMetadata` removes the app's metadata. */
export function minimiseData(endpoint: Endpoint, body: Record<string, unknown>, data: { store?: boolean | undefined; dropMetadata: boolean }): void {
  if (endpoint !== 'responses' && endpoint !== 'chat.completions') return;
  if (data.store !== undefined) body.store = data.store;
  if (data.dropMetadata) delete body.metadata;
}

// The same users call again and again, and an HMAC costs a key schedule each time (it was 2% of
// the sidecar's CPU, twice per call): hashes are remembered per key, in bounded maps that are
// simply emptied when full, since a rehash is cheap and correctness never depends on the memory.
const HASHES_PER_KEY = 10_000;
const KEYS_REMEMBERED = 16;
const hashes = new Map<string, Map<string, string>>();

/** A stable, keyed, one-way id for an end user: the same user maps to the same id on every replica. */
export function userHash(key: string, user: string): string {
  let known = hashes.get(key);
  if (!known) {
    if (hashes.size >= KEYS_REMEMBERED) hashes.clear();
    hashes.set(key, (known = new Map()));
  }
  let hash = known.get(user);
  if (hash === undefined) {
    if (known.size >= HASHES_PER_KEY) known.clear();
    hash = createHmac('sha256', key).update(user).digest('hex');
    known.set(user, hash);
  }
  return hash;
}

/**
 * Sets `safety_identifier` from the user (x-envelope-user, else whatever id the app put in
 * `safety_identifier` or the deprecated `user`), hashed with the route's key, and removes the
 * raw `user` field, so the raw id never leaves the pod.
 */
export function setSafetyIdentifier(endpoint: Endpoint, body: Record<string, unknown>, user: string | undefined, key: string): void {
  if (endpoint !== 'responses' && endpoint !== 'chat.completions') return;
  const raw = user ?? (typeof body.safety_identifier === 'string' ? body.safety_identifier : undefined) ?? (typeof body.user === 'string' ? body.user : undefined);
  delete body.user;
  if (raw === undefined || raw === '') {
    delete body.safety_identifier;
    return;
  }
  // OpenAI caps the field at 64 characters; 32 hex digits of the HMAC are plenty to tell users apart.
  body.safety_identifier = `ae-${userHash(key, raw).slice(0, 32)}`;
}

/**
 * The route's instructions become the first, unchanging part of every call (instructions for the
 * Responses API, the first system message for Chat), so OpenAI's prompt cache can reuse it; the
 * app's own instructions follow. `prompt_cache_key` groups calls by route and prompt version.
 */
export function applyPrompt(endpoint: Endpoint, body: Record<string, unknown>, prompt: { version: string; instructions: string } | undefined, routeId: string): void {
  if (!prompt) return;
  if (endpoint === 'responses') {
    const own = typeof body.instructions === 'string' && body.instructions ? `\n\n${body.instructions}` : '';
    body.instructions = prompt.instructions + own;
  } else if (endpoint === 'chat.completions') {
    const messages = Array.isArray(body.messages) ? body.messages : [];
    body.messages = [{ role: 'system', content: prompt.instructions }, ...messages];
  } else {
    return;
  }
  if (body.prompt_cache_key === undefined) body.prompt_cache_key = `${routeId}@${prompt.version}`;
}
