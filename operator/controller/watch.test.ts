// The watch supervisor against a scripted HTTP server standing in for the API server's wire
// behaviour: resume from the last resourceVersion (bookmarks included), relist on 410 Gone with
// deletions reported, restart after a normal end, and restart a watch that goes silent.
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { KubeClient } from '../kube/client.ts';
import { SupervisedWatch, type RestartReason } from './watch.ts';

const obj = (name: string, rv: string) => ({ metadata: { name, namespace: 'ns', resourceVersion: rv } });
const line = (res: ServerResponse, type: string, object: unknown) => res.write(`${JSON.stringify({ type, object })}\n`);

let server: Server | undefined;
let watch: SupervisedWatch<ReturnType<typeof obj>> | undefined;
afterEach(async () => {
  await watch?.stop();
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r));
});

describe('SupervisedWatch', () => {
  it('resumes, relists on 410, restarts after an end and after silence', async () => {
    const watchQueries: URLSearchParams[] = [];
    let lists = 0;
    server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      res.setHeader('content-type', 'application/json');
      if (url.searchParams.get('watch') !== 'true') {
        lists++;
        res.end(JSON.stringify(lists === 1 ? { metadata: { resourceVersion: '10' }, items: [obj('a', '9')] } : { metadata: { resourceVersion: '30' }, items: [obj('b', '29')] }));
        return;
      }
      watchQueries.push(url.searchParams);
      switch (watchQueries.length) {
        case 1: // An event and a bookmark, then a normal end.
          line(res, 'MODIFIED', obj('a', '12'));
          line(res, 'BOOKMARK', { metadata: { resourceVersion: '15' } });
          res.end();
          return;
        case 2: // Says nothing at all and never ends.
          res.flushHeaders();
          return;
        case 3: // The version is too old.
          line(res, 'ERROR', { kind: 'Status', code: 410, reason: 'Expired', message: 'too old resource version' });
          res.end();
          return;
        default:
          line(res, 'ADDED', obj('c', '31'));
          res.flushHeaders();
      }
    });
    await new Promise<void>((r) => server?.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const dir = mkdtempSync(join(tmpdir(), 'watch-test-'));
    writeFileSync(
      join(dir, 'kubeconfig'),
      JSON.stringify({ apiVersion: 'v1', kind: 'Config', clusters: [{ name: 'c', cluster: { server: `http://127.0.0.1:${port}` } }], users: [{ name: 'u', user: { token: 't' } }], contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }], 'current-context': 'x' }),
    );
    const client = await KubeClient.create(join(dir, 'kubeconfig'));
    const events: string[] = [];
    const restarts: RestartReason[] = [];
    watch = new SupervisedWatch(
      client,
      { resource: 'things', path: '/api/v1/things' },
      { onEvent: (type, o) => events.push(`${type} ${o.metadata.name}`), onRestart: (reason) => restarts.push(reason) },
      pino({ level: 'silent' }),
      { timeoutSeconds: 1, silenceMarginMs: 300, backoff: { baseMs: 10, maxMs: 20 } },
    );
    watch.start();
    for (let i = 0; i < 100 && !events.includes('ADDED c'); i++) await new Promise((r) => setTimeout(r, 50));

    expect(events).toEqual(['ADDED a', 'MODIFIED a', 'ADDED b', 'DELETED a', 'ADDED c']);
    expect(restarts.slice(0, 3)).toEqual(['end', 'silent', 'gone']);
    expect(watchQueries[0]?.get('resourceVersion')).toBe('10');
    expect(watchQueries[0]?.get('allowWatchBookmarks')).toBe('true');
    // Resumed from the bookmark, not from the list.
    expect(watchQueries[1]?.get('resourceVersion')).toBe('15');
    expect(watchQueries[2]?.get('resourceVersion')).toBe('15');
    // After 410 Gone: listed again, then watched from the new list.
    expect(lists).toBe(2);
    expect(watchQueries[3]?.get('resourceVersion')).toBe('30');
    expect(watch.get('ns', 'b')?.metadata.resourceVersion).toBe('29');
    expect(watch.get('ns', 'a')).toBeUndefined();
    await client.close();
  }, 15_000);
});
