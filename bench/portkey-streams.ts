// Preloaded into the Portkey gateway only. Portkey 1.15 appends its x-portkey-* headers to the
// upstream's own fetch Response, whose headers are immutable under the @hono/node-server it
// resolves to (1.19), so every streamed call fails with "TypeError: immutable" and a 500
// (Portkey-AI/gateway#1389, #1550). Upstream's fix copies the streamed response into a fresh one;
// this does the same at fetch, for event streams only, so the non-streamed path is untouched.
const upstreamFetch = globalThis.fetch;

globalThis.fetch = async (...args: Parameters<typeof fetch>): Promise<Response> => {
  const res = await upstreamFetch(...args);
  if (!res.headers.get('content-type')?.startsWith('text/event-stream')) return res;
  return new Response(res.body, { status: res.status, statusText: res.statusText, headers: new Headers(res.headers) });
};
