// `ai-envelope review list|show|approve|reject|edit`: a reviewer's client of a sidecar's admin
// port (reach a pod with `kubectl port-forward pod/NAME 4142`). The token comes from a file or
// the environment, never from the command line, where `ps` would show it.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

export const REVIEW_USAGE = `  review list [--status pending|approved|rejected|edited]
  review show ID
  review approve ID [--reviewer NAME] [--note TEXT]
  review reject ID [--reviewer NAME] [--note TEXT]
  review edit ID (--output-text TEXT | --output-file FILE) [--reviewer NAME] [--note TEXT]
        Work a sidecar's human review queue. --url (or AI_ENVELOPE_ADMIN_URL; default
        http://127.0.0.1:4142) is the sidecar's admin port; the route's reviewers' token comes from
        --token-file FILE or AI_ENVELOPE_REVIEW_TOKEN.
`;

class Usage extends Error {}

interface Out {
  out: (s: string) => void;
  err: (s: string) => void;
}

function options(args: string[]) {
  try {
    return parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        url: { type: 'string' },
        'token-file': { type: 'string' },
        status: { type: 'string' },
        reviewer: { type: 'string' },
        note: { type: 'string' },
        'output-text': { type: 'string' },
        'output-file': { type: 'string' },
      },
    });
  } catch (err) {
    throw new Usage((err as Error).message);
  }
}

function token(file: string | undefined, env: NodeJS.ProcessEnv): string {
  if (file) {
    try {
      return readFileSync(file, 'utf8').trim();
    } catch (err) {
      throw new Usage(`--token-file: ${(err as Error).message}`);
    }
  }
  const t = env.AI_ENVELOPE_REVIEW_TOKEN?.trim();
  if (!t) throw new Usage('a reviewer token is needed: --token-file FILE or AI_ENVELOPE_REVIEW_TOKEN');
  return t;
}

type Item = { id: string; route: string; reason: string; status: string; created_at: string; details: string[] };

export async function reviewCommand(args: string[], io: Out = { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) }, env = process.env): Promise<number> {
  try {
    const { values: v, positionals } = options(args);
    const [verb, id, ...extra] = positionals;
    if (!verb || !['list', 'show', 'approve', 'reject', 'edit'].includes(verb)) throw new Usage(`expected list, show, approve, reject or edit, got '${verb ?? ''}'`);
    if (verb === 'list' ? id !== undefined : !id || extra.length > 0) throw new Usage(verb === 'list' ? 'list takes no id' : `${verb} takes one review id`);
    const base = (v.url ?? env.AI_ENVELOPE_ADMIN_URL ?? 'http://127.0.0.1:4142').replace(/\/+$/, '');
    const headers: Record<string, string> = { authorization: `Bearer ${token(v['token-file'], env)}` };
    let res: Response;
    if (verb === 'list') {
      res = await fetch(`${base}/reviews${v.status ? `?status=${encodeURIComponent(v.status)}` : ''}`, { headers });
    } else if (verb === 'show') {
      res = await fetch(`${base}/reviews/${encodeURIComponent(id as string)}`, { headers });
    } else {
      let text = v['output-text'];
      if (v['output-file']) {
        if (text !== undefined) throw new Usage('--output-text and --output-file exclude each other');
        text = readFileSync(v['output-file'], 'utf8');
      }
      if (verb === 'edit' && text === undefined) throw new Usage('edit needs --output-text or --output-file');
      if (verb !== 'edit' && text !== undefined) throw new Usage(`--output-text goes with edit, not ${verb}`);
      const body = { ...(v.reviewer ? { reviewer: v.reviewer } : {}), ...(v.note ? { note: v.note } : {}), ...(text !== undefined ? { output_text: text } : {}) };
      res = await fetch(`${base}/reviews/${encodeURIComponent(id as string)}/${verb}`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    }
    const json = (await res.json().catch(() => ({}))) as { error?: { message?: string }; data?: Item[] };
    if (!res.ok) {
      io.err(`ai-envelope review ${verb}: ${json.error?.message ?? `HTTP ${res.status}`}\n`);
      return 1;
    }
    if (verb === 'list') {
      const rows = json.data ?? [];
      io.out(rows.length === 0 ? 'no reviews\n' : `${rows.map((r) => [r.id, r.status.padEnd(8), r.reason.padEnd(18), r.route, r.created_at, r.details.slice(0, 2).join('; ')].join('  ')).join('\n')}\n`);
    } else {
      io.out(`${JSON.stringify(json, null, 2)}\n`);
    }
    return 0;
  } catch (err) {
    if (err instanceof Usage) {
      io.err(`ai-envelope review: ${err.message}\n\n${REVIEW_USAGE}`);
      return 2;
    }
    if ((err as Error).name === 'TypeError' && /fetch failed/.test((err as Error).message)) {
      io.err(`ai-envelope review: cannot reach the sidecar's admin port: ${String((err as { cause?: unknown }).cause ?? err)}\n`);
      return 1;
    }
    throw err;
  }
}
