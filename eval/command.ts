// `ai-envelope eval`: flags, files and exit codes around the runner. 0: every gate passed;
// 1: a threshold was missed or the candidate regressed past the margin; 2: usage or suite errors.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { renderHtml } from './html.ts';
import { buildReport, formatTable } from './report.ts';
import { EvalUsageError, runEval } from './runner.ts';
import { loadSuite, SuiteError, toEvalsJsonl } from './suite.ts';

export const EVAL_USAGE = `  eval -f SUITE --routes PATH [--compare PATH2] [--out DIR] [--concurrency 4] [--secrets-dir DIR]
       [--cache-dir DIR | --no-cache] [--json] [--export-jsonl FILE]
        Run an eval suite (YAML, or JSONL cases / OpenAI Evals items) through the envelope of the routes
        in PATH (a sidecar started in this process), and with --compare through PATH2 side by side.
        Prints a table (--json: the report as JSON); --out writes report.json, report.html, the sidecars'
        logs and a result cache (DIR/cache, or --cache-dir) keyed by case and route config hash.
        --export-jsonl writes the cases as an OpenAI Evals JSONL data source and exits.
        Exit 1 when a threshold is missed or the candidate regresses past the margin; 2 on usage errors.
`;

function fail(message: string): number {
  process.stderr.write(`ai-envelope eval: ${message}\n`);
  return 2;
}

function progressLine(): (done: number, total: number, cached: number) => void {
  const tty = process.stderr.isTTY === true;
  let lastDecile = -1;
  return (done, total, cached) => {
    const line = `eval: ${done}/${total} cases (${cached} cached)`;
    if (tty) {
      const width = 20;
      const filled = Math.round((done / total) * width);
      process.stderr.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${line}${done === total ? '\n' : ''}`);
      return;
    }
    // Not a terminal (CI logs): one line per tenth, and the last.
    const decile = Math.floor((done / total) * 10);
    if (decile !== lastDecile || done === total) {
      lastDecile = decile;
      process.stderr.write(`${line}\n`);
    }
  };
}

export async function evalCommand(args: string[]): Promise<number> {
  let v;
  try {
    v = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        file: { type: 'string', short: 'f' },
        routes: { type: 'string' },
        compare: { type: 'string' },
        out: { type: 'string' },
        concurrency: { type: 'string' },
        'secrets-dir': { type: 'string' },
        'cache-dir': { type: 'string' },
        'no-cache': { type: 'boolean' },
        json: { type: 'boolean' },
        'export-jsonl': { type: 'string' },
      },
    }).values;
  } catch (e) {
    return fail((e as Error).message);
  }
  if (!v.file) return fail('-f SUITE is required');
  const concurrency = v.concurrency === undefined ? 4 : Number(v.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 256) return fail(`--concurrency must be a whole number from 1 to 256, got '${v.concurrency}'`);
  if (v['no-cache'] && v['cache-dir']) return fail('--no-cache and --cache-dir exclude each other');

  let suite;
  try {
    suite = await loadSuite(v.file);
  } catch (e) {
    if (!(e instanceof SuiteError)) throw e;
    for (const p of e.problems) process.stderr.write(`${p}\n`);
    return 2;
  }
  if (v['export-jsonl']) {
    await writeFile(v['export-jsonl'], toEvalsJsonl(suite));
    process.stderr.write(`wrote ${suite.cases.length} item(s) to ${v['export-jsonl']}\n`);
    return 0;
  }
  if (!v.routes) return fail('--routes PATH is required');

  const cacheDir = v['no-cache'] ? undefined : (v['cache-dir'] ?? (v.out ? join(v.out, 'cache') : undefined));
  let outcome;
  try {
    outcome = await runEval({
      suite,
      routes: v.routes,
      ...(v.compare ? { compare: v.compare } : {}),
      secretsDir: v['secrets-dir'] ?? '/etc/ai-envelope/secrets',
      concurrency,
      ...(cacheDir ? { cacheDir } : {}),
      progress: progressLine(),
    });
  } catch (e) {
    if (e instanceof EvalUsageError) {
      process.stderr.write(`${e.message}\n`);
      return 2;
    }
    throw e;
  }
  const report = buildReport(suite, outcome.baseline, outcome.candidate);
  if (v.out) {
    await mkdir(v.out, { recursive: true });
    await writeFile(join(v.out, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
    await writeFile(join(v.out, 'report.html'), renderHtml(report));
    for (const [label, lines] of Object.entries(outcome.logs)) await writeFile(join(v.out, `sidecar-${label}.log`), lines.length > 0 ? `${lines.join('\n')}\n` : '');
  }
  process.stdout.write(v.json ? `${JSON.stringify(report, null, 2)}\n` : formatTable(report));
  if (v.out && !v.json) process.stdout.write(`report: ${join(v.out, 'report.html')}\n`);
  return report.ok ? 0 : 1;
}
