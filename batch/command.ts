// `ai-envelope batch submit|status|results`: Batch API jobs from a JSONL file, through the sidecar
// (or any OpenAI-compatible API). The file is checked locally first, so a typo costs no upload
// and no failed batch; results come back in the input's order, one line per request.
import { readFile, rename, writeFile } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { BatchApi, ServerError } from './api.ts';
import { checkBatchInput } from './input.ts';
import { batchErrorText, describeBatch, FINAL, progressBar, progressKey, progressLine, type BatchObject } from './progress.ts';
import { mergeResults, type Merged } from './results.ts';

export const BATCH_USAGE = `  batch submit -f FILE.jsonl [--endpoint /v1/chat/completions] [--wait] [--out FILE] [--errors FILE] [--poll-ms 1000]
  batch status ID [--json]
  batch results ID [--out FILE] [--errors FILE] [-f FILE.jsonl]
        Batch API jobs through the sidecar: the file is checked line by line before upload; --wait
        shows progress and writes results (default FILE.results.jsonl) in the input's order.
        --base-url (or OPENAI_BASE_URL; default http://127.0.0.1:4141/v1), --route NAME (sent as
        x-envelope-route). Exit: 0 every request succeeded, 1 bad input file or error from the
        server, 2 bad arguments, 3 requests failed or the batch ended failed/expired/cancelled,
        4 not finished yet (results).
`;

/** Exit codes, documented in the usage text and the README. */
export const EXIT = { ok: 0, error: 1, usage: 2, failed: 3, notFinished: 4 } as const;

const DEFAULT_BASE_URL = 'http://127.0.0.1:4141/v1';
const MAX_POLL_MS = 30_000;
/** A non-terminal log gets a line at least this often, so a quiet batch does not look stuck. */
const HEARTBEAT_MS = 30_000;
const SHOWN_PROBLEMS = 20;
const SHOWN_FAILURES = 100;
/** Consecutive failed polls tolerated while waiting (the network or the API blinking). */
const POLL_RETRIES = 5;

export interface BatchIO {
  out(s: string): void;
  err(s: string): void;
  /** Whether stderr is a terminal: a redrawn bar there, plain lines otherwise. */
  tty: boolean;
}

const processIO: BatchIO = { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s), tty: process.stderr.isTTY === true };

class Usage extends Error {}

const OPTIONS = {
  file: { type: 'string', short: 'f' },
  endpoint: { type: 'string' },
  wait: { type: 'boolean' },
  out: { type: 'string' },
  errors: { type: 'string' },
  json: { type: 'boolean' },
  'poll-ms': { type: 'string' },
  'base-url': { type: 'string' },
  route: { type: 'string' },
} as const;

type Flags = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true; strict: true }>>['values'];

export async function batchCommand(args: string[], io: BatchIO = processIO, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  try {
    let parsed;
    try {
      parsed = parseArgs({ args, options: OPTIONS, allowPositionals: true, strict: true });
    } catch (err) {
      throw new Usage((err as Error).message);
    }
    const [sub, ...positionals] = parsed.positionals;
    const v = parsed.values;
    const api = new BatchApi({ baseURL: v['base-url'] ?? env.OPENAI_BASE_URL ?? DEFAULT_BASE_URL, route: v.route, apiKey: env.OPENAI_API_KEY });
    const only = (allowed: (keyof Flags)[]) => {
      const extra = (Object.keys(v) as (keyof Flags)[]).filter((k) => !allowed.includes(k) && k !== 'base-url' && k !== 'route');
      if (extra.length > 0) throw new Usage(`${sub} does not take ${extra.map((k) => `--${k}`).join(', ')}`);
    };
    const id = () => {
      if (positionals.length !== 1) throw new Usage(`${sub} needs one batch id, e.g. 'ai-envelope batch ${sub} batch_abc123'`);
      return positionals[0]!;
    };
    switch (sub) {
      case 'submit':
        only(['file', 'endpoint', 'wait', 'out', 'errors', 'poll-ms']);
        if (positionals.length > 0) throw new Usage(`submit takes no positional arguments, got '${positionals[0]}'`);
        return await submit(api, v, io);
      case 'status':
        only(['json']);
        return await status(api, id(), v.json === true, io);
      case 'results':
        only(['out', 'errors', 'file']);
        return await results(api, id(), v, io);
      default:
        throw new Usage(sub ? `unknown subcommand '${sub}' (submit, status or results)` : 'a subcommand is needed: submit, status or results');
    }
  } catch (err) {
    if (err instanceof Usage) {
      io.err(`ai-envelope batch: ${err.message}\n`);
      return EXIT.usage;
    }
    if (err instanceof ServerError || err instanceof InputError) {
      io.err(`ai-envelope batch: ${err.message}\n`);
      return EXIT.error;
    }
    throw err;
  }
}

/** A local file that cannot be read or written, or a server file that cannot be understood. */
class InputError extends Error {}

async function readText(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new InputError(`cannot read ${path}: ${(err as Error).message}`);
  }
}

async function submit(api: BatchApi, v: Flags, io: BatchIO): Promise<number> {
  const file = v.file;
  if (!file) throw new Usage('submit needs -f FILE.jsonl');
  if (v.endpoint !== undefined && !v.endpoint.startsWith('/v1/')) throw new Usage(`--endpoint must be an API path like /v1/chat/completions, got '${v.endpoint}'`);
  if (!v.wait && (v.out || v.errors)) throw new Usage('--out and --errors need --wait (or use: ai-envelope batch results ID)');
  const pollMs = pollInterval(v['poll-ms']);
  const out = v.wait ? (v.out ?? `${file.replace(/\.jsonl$/i, '')}.results.jsonl`) : undefined;
  for (const [flag, path] of [['--out', out], ['--errors', v.errors]] as const) {
    if (path && resolve(path) === resolve(file)) throw new Usage(`${flag} would overwrite the input file ${file}`);
  }

  const text = await readText(file);
  const checked = checkBatchInput(text, file, v.endpoint);
  if (checked.problems.length > 0) {
    for (const p of checked.problems.slice(0, SHOWN_PROBLEMS)) io.err(`${p}\n`);
    if (checked.problems.length > SHOWN_PROBLEMS) io.err(`... and ${checked.problems.length - SHOWN_PROBLEMS} more problems\n`);
    io.err(`ai-envelope batch: ${file} has ${checked.problems.length} problem(s); nothing was uploaded\n`);
    return EXIT.error;
  }
  const endpoint = checked.endpoint!;
  // The Batch API takes only .jsonl names; the bytes are what matter.
  const name = /\.jsonl$/i.test(basename(file)) ? basename(file) : `${basename(file)}.jsonl`;
  const uploaded = await api.uploadFile(name, Buffer.from(text, 'utf8'));
  const batch = await api.createBatch(uploaded.id, endpoint);
  io.out(`${batch.id}\n`);
  io.err(`submitted ${batch.id}: ${checked.customIds.length} request(s) to ${endpoint} (input file ${uploaded.id})\n`);
  if (!v.wait) {
    io.err(`follow it with: ai-envelope batch status ${batch.id}\n`);
    return EXIT.ok;
  }
  const final = await waitFor(api, batch.id, pollMs, io);
  return finish(api, final, checked.customIds, { out: out!, errors: v.errors }, io);
}

function pollInterval(value: string | undefined): number {
  if (value === undefined) return 1000;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 10) throw new Usage(`--poll-ms must be a whole number of milliseconds (10 or more), got '${value}'`);
  return n;
}

/**
 * Polls until the batch is final. The interval grows while nothing changes (batches can take
 * hours) and drops back when something does, so a moving batch is shown promptly.
 */
async function waitFor(api: BatchApi, id: string, pollMs: number, io: BatchIO): Promise<BatchObject> {
  const started = Date.now();
  let interval = pollMs;
  let lastKey = '';
  let lastLineAt = 0;
  let failures = 0;
  const onInterrupt = () => {
    io.err(`${io.tty ? '\n' : ''}stopped waiting; ${id} goes on: ai-envelope batch status ${id}\n`);
    process.exit(130);
  };
  process.once('SIGINT', onInterrupt);
  try {
    for (;;) {
      let b: BatchObject;
      try {
        b = await api.getBatch(id);
        failures = 0;
      } catch (err) {
        const transient = err instanceof ServerError && (err.status === 0 || err.status === 429 || err.status >= 500);
        if (!transient || ++failures > POLL_RETRIES) throw err;
        io.err(`${io.tty ? '\n' : ''}${(err as Error).message}; retrying\n`);
        await sleep(Math.min(interval * 2 ** failures, MAX_POLL_MS));
        continue;
      }
      const elapsed = Date.now() - started;
      const key = progressKey(b);
      if (io.tty) io.err(`\r${progressBar(b, elapsed)}\x1b[K`);
      else if (key !== lastKey || Date.now() - lastLineAt >= HEARTBEAT_MS) {
        io.err(`${progressLine(b, elapsed)}\n`);
        lastLineAt = Date.now();
      }
      if (FINAL.has(b.status)) {
        if (io.tty) io.err('\n');
        return b;
      }
      interval = key === lastKey ? Math.min(Math.round(interval * 1.5), Math.max(MAX_POLL_MS, pollMs)) : pollMs;
      lastKey = key;
      await sleep(interval);
    }
  } finally {
    process.off('SIGINT', onInterrupt);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function status(api: BatchApi, id: string, asJson: boolean, io: BatchIO): Promise<number> {
  const b = await api.getBatch(id);
  io.out(asJson ? `${JSON.stringify(b, null, 2)}\n` : describeBatch(b));
  return EXIT.ok;
}

async function results(api: BatchApi, id: string, v: Flags, io: BatchIO): Promise<number> {
  const b = await api.getBatch(id);
  if (!FINAL.has(b.status)) {
    io.err(`ai-envelope batch: ${progressLine(b, 0).replace(/ after .*$/, '')}: not finished yet; results come once it is\n`);
    return EXIT.notFinished;
  }
  return finish(api, b, await inputOrder(api, b, v.file), { out: v.out, errors: v.errors }, io);
}

/** The input's custom_id order: from the local file when given, else from the uploaded one. */
async function inputOrder(api: BatchApi, b: BatchObject, file: string | undefined): Promise<string[] | undefined> {
  if (file) {
    const checked = checkBatchInput(await readText(file), file);
    if (checked.problems.length > 0) throw new InputError(`${file} is not a valid batch input (${checked.problems[0]}), so it cannot give the order`);
    return checked.customIds;
  }
  if (!b.input_file_id) return undefined;
  try {
    return checkBatchInput(await api.fileContent(b.input_file_id), 'input').customIds;
  } catch (err) {
    // The input may be deleted or not downloadable: then the files' own order will do.
    if (err instanceof ServerError) return undefined;
    throw err;
  }
}

/** Downloads, merges and writes the results of a final batch; reports each failure. */
async function finish(api: BatchApi, b: BatchObject, order: string[] | undefined, dest: { out: string | undefined; errors: string | undefined }, io: BatchIO): Promise<number> {
  if (b.status === 'failed') {
    const errors = b.errors?.data ?? [];
    for (const e of errors) io.err(`${b.id}: ${batchErrorText(e)}\n`);
    io.err(`ai-envelope batch: ${b.id} failed${errors.length ? ` with ${errors.length} error(s)` : ''}; no request ran\n`);
    return EXIT.failed;
  }
  let merged: Merged;
  try {
    const output = b.output_file_id ? await api.fileContent(b.output_file_id) : '';
    const errorText = b.error_file_id ? await api.fileContent(b.error_file_id) : '';
    merged = mergeResults(output, errorText, order);
  } catch (err) {
    if (err instanceof ServerError) throw err;
    throw new InputError(`${b.id}: ${(err as Error).message}`);
  }
  if (dest.out) await writeLines(dest.out, merged.lines);
  else io.out(merged.lines.map((l) => `${l}\n`).join(''));
  if (dest.errors) await writeLines(dest.errors, merged.errorLines);

  for (const f of merged.failed.slice(0, SHOWN_FAILURES)) io.err(`failed: ${f.customId}: ${f.reason}\n`);
  if (merged.failed.length > SHOWN_FAILURES) io.err(`... and ${merged.failed.length - SHOWN_FAILURES} more failed requests${dest.errors ? ` (all in ${dest.errors})` : ''}\n`);
  for (const id of merged.missing.slice(0, SHOWN_FAILURES)) io.err(`missing: ${id}: no line in the output or error file\n`);
  const total = merged.succeeded + merged.failed.length + merged.missing.length;
  const where = dest.out ? `; results in ${dest.out}` : '';
  const missing = merged.missing.length > 0 ? `, ${merged.missing.length} without a result` : '';
  io.err(`${b.id} ${b.status}: ${total} request(s), ${merged.succeeded} succeeded, ${merged.failed.length} failed${missing}${where}\n`);
  return b.status === 'completed' && merged.failed.length === 0 && merged.missing.length === 0 ? EXIT.ok : EXIT.failed;
}

/** Written beside the target and renamed over it, so an interrupted write leaves no half file. */
async function writeLines(path: string, lines: string[]): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    await writeFile(tmp, lines.map((l) => `${l}\n`).join(''));
    await rename(tmp, path);
  } catch (err) {
    throw new InputError(`cannot write ${path}: ${(err as Error).message}`);
  }
}
