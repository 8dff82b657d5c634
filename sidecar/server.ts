// The two listeners. This file is the sidecar's route table: every path it answers is here.
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import express, { type Request, type Response } from 'express';
import { EnvelopeError } from './errors.ts';
import { handle } from './pipeline/exchange.ts';
import { modelCall } from './pipeline/model-call.ts';
import { getModel, listModels, passthrough } from './pipeline/passthrough.ts';
import { feedback } from './pipeline/feedback.ts';
import { decideReview, listReviews, reviewOutcome, showReview } from './review/http.ts';
import type { Endpoint } from '../crds/schema.ts';
import type { Sidecar } from './sidecar.ts';

/** The model calls, every one a POST: the paths nearly all traffic takes. */
const MODEL_CALLS: ReadonlyMap<string, Endpoint> = new Map([
  ['/v1/responses', 'responses'],
  ['/v1/chat/completions', 'chat.completions'],
  ['/v1/embeddings', 'embeddings'],
  ['/v1/moderations', 'moderations'],
]);

/**
 * The proxy listener. Model calls go straight to their handler; everything else goes through
 * Express. Express re-parents every request and response object onto its own prototypes, which
 * cost the hot path more than all of its routing (ADR 0015): the pipeline needs neither.
 */
export function proxyListener(sidecar: Sidecar): RequestListener {
  const app = proxyApp(sidecar);
  return (req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? '';
    const q = url.indexOf('?');
    const endpoint = req.method === 'POST' ? MODEL_CALLS.get(q < 0 ? url : url.slice(0, q)) : undefined;
    if (endpoint) void handle(sidecar, req, res, endpoint, (ex) => modelCall(ex, endpoint));
    else app(req, res);
  };
}

export function proxyApp(sidecar: Sidecar): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');

  const model = (endpoint: Endpoint) => (req: Request, res: Response) => handle(sidecar, req, res, endpoint, (ex) => modelCall(ex, endpoint));
  const through = (endpoint: Endpoint) => (req: Request, res: Response) => handle(sidecar, req, res, endpoint, (ex) => passthrough(ex, endpoint));

  for (const [path, endpoint] of MODEL_CALLS) app.post(path, model(endpoint));

  app.get('/v1/models', (req, res) => handle(sidecar, req, res, 'models', listModels));
  app.get('/v1/models/:id', (req, res) => handle(sidecar, req, res, 'models', (ex) => getModel(ex, String(req.params.id))));

  // Stored responses and completions, files and batches: read, cancel, delete, upload.
  app.all('/v1/responses/*rest', through('responses'));
  app.all('/v1/chat/completions/*rest', through('chat.completions'));
  app.get('/v1/chat/completions', through('chat.completions'));
  // Batch input is governed on upload, and a batch reserves its budget before it exists (sidecar/batch/).
  app.post('/v1/files', (req, res) => handle(sidecar, req, res, 'files', (ex) => sidecar.batches.upload(ex)));
  app.post('/v1/batches', (req, res) => handle(sidecar, req, res, 'batches', (ex) => sidecar.batches.create(ex)));
  app.get('/v1/batches/:id', (req, res) => handle(sidecar, req, res, 'batches', (ex) => sidecar.batches.retrieve(ex, String(req.params.id))));
  app.all('/v1/files', through('files'));
  app.all('/v1/files/*rest', through('files'));
  app.all('/v1/batches', through('batches'));
  app.all('/v1/batches/*rest', through('batches'));

  // The app's verdict on an answer (quality signals); not part of OpenAI's API, hence not under /v1.
  app.post('/envelope/feedback', (req, res) => handle(sidecar, req, res, 'feedback', feedback));
  // The outcome of a call held for human review (review_pending), by its review id.
  app.get('/envelope/reviews/:id', (req, res) => handle(sidecar, req, res, 'review', (ex) => reviewOutcome(ex, String(req.params.id))));

  // A deferred call's status and answer, by the id its 202 gave; under /v1 too, so the app's SDK reaches it with its base URL.
  const deferred = (req: Request, res: Response) => handle(sidecar, req, res, 'deferred', (ex) => sidecar.batches.deferred(ex, String(req.params.id)));
  app.get('/envelope/deferred/:id', deferred);
  app.get('/v1/envelope/deferred/:id', deferred);

  app.use((req, res) => {
    void handle(sidecar, req, res, 'unknown', async () => {
      throw new EnvelopeError('invalid_request', `Unknown path ${req.method} ${req.path}: the sidecar serves the OpenAI API under /v1.`, { status: 404 });
    });
  });
  return app;
}

export function adminApp(sidecar: Sidecar): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', (_req, res) => {
    const { ready, reasons } = sidecar.readiness();
    res.status(ready ? 200 : 503).json({
      ready,
      reasons,
      config_version: sidecar.config.current?.version ?? null,
      config_error: sidecar.config.lastError ?? null,
    });
  });
  app.get('/metrics', async (_req, res) => {
    res.setHeader('content-type', sidecar.metrics.registry.contentType);
    res.end(await sidecar.metrics.registry.metrics());
  });
  // The review queue, for reviewers holding a route's token (sidecar/review/http.ts).
  app.get('/reviews', (req, res, next) => void listReviews(sidecar, req, res).catch(next));
  app.get('/reviews/:id', (req, res, next) => void showReview(sidecar, req, res).catch(next));
  app.post('/reviews/:id/:action', express.json({ limit: '2mb' }), (req, res, next) => void decideReview(sidecar, req, res).catch(next));
  app.get('/usage', async (_req, res) => {
    res.json(await sidecar.usageReport());
  });
  // A body that is not JSON, or too large, in the same error shape as everything else.
  app.use((err: { status?: number; message?: string }, _req: Request, res: Response, _next: (e?: unknown) => void) => {
    const status = err.status && err.status >= 400 && err.status < 500 ? err.status : 500;
    res.setHeader('x-should-retry', 'false');
    res.status(status).json({ error: { message: status === 500 ? 'Internal error in the sidecar.' : `The request body could not be read: ${err.message ?? 'invalid'}.`, type: 'envelope_error', code: 'invalid_request', param: null } });
  });
  return app;
}
