import { describe, expect, it } from 'vitest';
import { renderConfig } from '../../crds/render.ts';
import { AIRoute } from '../../crds/schema.ts';
import { compileConfig } from '../config/runtime.ts';
import { EnvelopeError } from '../errors.ts';
import { checkEndpoint, resolveModel, selectRoute } from './route.ts';

function route(name: string, spec: Record<string, unknown>, namespace = 'shop') {
  return AIRoute.parse({ apiVersion: 'ai-envelope.dev/v1alpha1', kind: 'AIRoute', metadata: { name, namespace }, spec });
}

function config(...routes: ReturnType<typeof route>[]) {
  return compileConfig(renderConfig(routes, []), '/secrets');
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return e instanceof EnvelopeError ? e.code : 'not-envelope';
  }
  return undefined;
}

const chat = route('chat', { endpoints: ['chat.completions', 'responses'], model: { default: 'gpt-4.1-mini', allowed: ['gpt-4.1-mini', 'gpt-4.1-nano'], aliases: { fast: 'gpt-4.1-nano' } } });
const embed = route('embed', { endpoints: ['embeddings'], model: { allowed: ['text-embedding-3-small'] } });
const open = route('open', { endpoints: ['chat.completions'] });

describe('selectRoute', () => {
  it('takes the header first, by name or namespace/name', () => {
    const c = config(chat, embed);
    expect(selectRoute(c, 'embeddings', 'chat', 'text-embedding-3-small').id).toBe('shop/chat');
    expect(selectRoute(c, 'embeddings', 'shop/embed', undefined).id).toBe('shop/embed');
    expect(codeOf(() => selectRoute(c, 'embeddings', 'nope', undefined))).toBe('route_not_found');
  });
  it('uses the only route when there is one', () => {
    expect(selectRoute(config(chat), 'embeddings', undefined, 'anything').id).toBe('shop/chat');
  });
  it('chooses by model and alias, then by endpoint', () => {
    const c = config(chat, embed, open);
    expect(selectRoute(c, 'embeddings', undefined, 'text-embedding-3-small').id).toBe('shop/embed');
    expect(selectRoute(c, 'chat.completions', undefined, 'fast').id).toBe('shop/chat');
    expect(selectRoute(c, 'chat.completions', undefined, 'gpt-5').id).toBe('shop/open');
    expect(selectRoute(c, 'embeddings', undefined, undefined).id).toBe('shop/embed');
  });
  it('refuses to guess between routes', () => {
    const c = config(chat, open);
    const e = (() => {
      try {
        selectRoute(c, 'chat.completions', undefined, undefined);
      } catch (err) {
        return err as EnvelopeError;
      }
    })();
    expect(e?.code).toBe('route_not_found');
    expect(e?.message).toContain('x-envelope-route');
  });
  it('keeps a bare name only when it is unambiguous across namespaces', () => {
    const c = config(route('chat', {}, 'a'), route('chat', {}, 'b'));
    expect(codeOf(() => selectRoute(c, 'responses', 'chat', undefined))).toBe('route_not_found');
    expect(selectRoute(c, 'responses', 'b/chat', undefined).id).toBe('b/chat');
  });
});

describe('resolveModel and checkEndpoint', () => {
  const c = config(chat);
  const r = c.routes[0]!;
  it('applies the default, aliases and the allow-list', () => {
    expect(resolveModel(r, undefined)).toBe('gpt-4.1-mini');
    expect(resolveModel(r, 'fast')).toBe('gpt-4.1-nano');
    expect(codeOf(() => resolveModel(r, 'gpt-4o'))).toBe('model_not_allowed');
    expect(codeOf(() => resolveModel(r, 42))).toBe('invalid_request');
  });
  it('requires a model when the route has no default', () => {
    expect(codeOf(() => resolveModel(config(embed).routes[0]!, undefined))).toBe('invalid_request');
  });
  it('refuses endpoints the route does not allow', () => {
    expect(codeOf(() => checkEndpoint(r, 'embeddings'))).toBe('endpoint_not_allowed');
    expect(codeOf(() => checkEndpoint(r, 'responses'))).toBeUndefined();
  });
});
