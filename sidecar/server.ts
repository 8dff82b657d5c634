// The two listeners. This file is the sidecar's route table: every path it answers is here.
import express, { type Request, type Response } from 'express';
import { EnvelopeError } from './errors.ts';
import { handle } from './pipeline/exchange.ts';
import { modelCall } from './pipeline/model-call.ts';
import { getModel, listModels, passthrough } from './pipeline/passthrough.ts';
import type { Endpoint } from '../crds/schema.ts';
import type { Sidecar } from './sidecar.ts';

export function proxyApp(sidecar: Sidecar): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');

  const model = (endpoint: Endpoint) => (req: Request, res: Response) => handle(sidecar, req, res, endpoint, (ex) => modelCall(ex, endpoint));
  const through = (endpoint: Endpoint) => (req: Request, res: Response) => handle(sidecar, req, res, endpoint, (ex) => passthrough(ex, endpoint));

  app.post('/v1/responses', model('responses'));
  app.post('/v1/chat/completions', model('chat.completions'));
  app.post('/v1/embeddings', model('embeddings'));
  app.post('/v1/moderations', model('moderations'));

  app.get('/v1/models', (req, res) => handle(sidecar, req, res, 'models', listModels));
  app.get('/v1/models/:id', (req, res) => handle(sidecar, req, res, 'models', (ex) => getModel(ex, String(req.params.id))));

  // Stored responses and completions, files and batches: read, cancel, delete, upload.
  app.all('/v1/responses/*rest', through('responses'));
  app.all('/v1/chat/completions/*rest', through('chat.completions'));
  app.get('/v1/chat/completions', through('chat.completions'));
  app.all('/v1/files', through('files'));
  app.all('/v1/files/*rest', through('files'));
  app.all('/v1/batches', through('batches'));
  app.all('/v1/batches/*rest', through('batches'));

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
  app.get('/usage', async (_req, res) => {
    res.json(await sidecar.usageReport());
  });
  return app;
}
