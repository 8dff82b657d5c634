#!/usr/bin/env node
// The `ai-envelope` command. Each subcommand parses its own flags and calls into its part.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { stringify } from 'yaml';
import { readSources, parseManifests, formatProblem } from './crds/manifests.ts';
import { crossResourceProblems, loadConfig, renderConfig } from './crds/render.ts';

const USAGE = `Usage: ai-envelope <command> [options]

Commands:
  sidecar -f PATH [--port 4141] [--admin-port 4142] [--secrets-dir DIR] [--state-dir DIR]
          [--redis-url URL] [--grace-seconds 25]
        Run the proxy. PATH: a YAML file or folder of AIRoute/AIBudget manifests, or a rendered
        config; reloaded when it changes. --state-dir: where spend persists across restarts.
        --redis-url (or AI_ENVELOPE_REDIS_URL): share limits and budgets with every replica.
  validate -f PATH     Check manifests; exit 1 with one line per problem.
  render -f PATH       Print the sidecar config these manifests produce (defaults applied).
  simulator [--port 4010] [--api-key KEY]... [--stream-delay-ms 0] [--latency-ms 0] [--batch-step-ms 50]
        Run the local OpenAI-compatible simulator (for trying the sidecar without a key).
  help                 Show this text.
`;

class UsageError extends Error {}

function parse<T extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: T) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false }).values;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function int(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`--${name} must be a whole number, got '${value}'`);
  return n;
}

function requirePath(v: { file?: string | undefined }): string {
  if (!v.file) throw new UsageError('-f PATH is required');
  return v.file;
}

async function validate(args: string[]): Promise<number> {
  const path = requirePath(parse(args, { file: { type: 'string', short: 'f' } }));
  const m = parseManifests(await readSources(path));
  if (m.problems.length === 0 && m.routes.length > 0) m.problems.push(...crossResourceProblems(renderConfig(m.routes, m.budgets), path));
  for (const p of m.problems) process.stderr.write(`${formatProblem(p)}\n`);
  if (m.problems.length > 0) return 1;
  process.stdout.write(`ok: ${m.routes.length} AIRoute(s), ${m.budgets.length} AIBudget(s), ${m.configs.length} rendered config(s)${m.skipped ? `, ${m.skipped} other document(s) skipped` : ''}\n`);
  return 0;
}

async function render(args: string[]): Promise<number> {
  const path = requirePath(parse(args, { file: { type: 'string', short: 'f' } }));
  const result = await loadConfig(path);
  if (!result.ok) {
    for (const p of result.problems) process.stderr.write(`${formatProblem(p)}\n`);
    return 1;
  }
  process.stdout.write(stringify(result.config));
  return 0;
}

async function sidecar(args: string[]): Promise<number> {
  const v = parse(args, {
    file: { type: 'string', short: 'f' },
    port: { type: 'string' },
    'admin-port': { type: 'string' },
    'secrets-dir': { type: 'string' },
    'state-dir': { type: 'string' },
    'redis-url': { type: 'string' },
    'grace-seconds': { type: 'string' },
    'poll-ms': { type: 'string' },
  });
  const { startSidecar } = await import('./sidecar/main.ts');
  const { createLogger } = await import('./sidecar/telemetry/log.ts');
  const log = createLogger();
  const running = await startSidecar({
    configPath: requirePath(v),
    secretsDir: v['secrets-dir'] ?? '/etc/ai-envelope/secrets',
    ...(v['state-dir'] ? { stateDir: v['state-dir'] } : {}),
    ...(v['redis-url'] || process.env.AI_ENVELOPE_REDIS_URL ? { redisURL: v['redis-url'] ?? process.env.AI_ENVELOPE_REDIS_URL } : {}),
    port: int(v.port, 'port', 4141),
    adminPort: int(v['admin-port'], 'admin-port', 4142),
    graceSeconds: int(v['grace-seconds'], 'grace-seconds', 25),
    pollMs: int(v['poll-ms'], 'poll-ms', 2000),
    log,
  });
  return new Promise((resolve) => {
    const stop = (signal: string) => {
      log.info({ event: 'signal', signal }, 'stopping');
      // Exit explicitly: pooled upstream connections would otherwise keep the process alive.
      void running.shutdown().then(() => {
        resolve(0);
        process.exit(0);
      });
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}

async function simulator(args: string[]): Promise<number> {
  const v = parse(args, {
    host: { type: 'string' },
    port: { type: 'string' },
    'api-key': { type: 'string', multiple: true },
    'stream-delay-ms': { type: 'string' },
    'latency-ms': { type: 'string' },
    'batch-step-ms': { type: 'string' },
  });
  const { startSimulator } = await import('./simulator/index.ts');
  const sim = await startSimulator({
    host: v.host ?? '127.0.0.1',
    port: int(v.port, 'port', 4010),
    ...(v['api-key'] ? { apiKeys: v['api-key'] } : {}),
    streamDelayMs: int(v['stream-delay-ms'], 'stream-delay-ms', 0),
    latencyMs: int(v['latency-ms'], 'latency-ms', 0),
    batchStepMs: int(v['batch-step-ms'], 'batch-step-ms', 50),
  });
  // One parseable line, so a parent process that asked for port 0 learns where it is.
  process.stdout.write(`${JSON.stringify({ url: sim.url, port: sim.port })}\n`);
  return new Promise((resolve) => {
    const stop = () => void sim.close().then(() => resolve(0));
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
}

const COMMANDS: Record<string, (args: string[]) => Promise<number>> = { validate, render, sidecar, simulator };

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(USAGE);
    return command ? 0 : 2;
  }
  const run = COMMANDS[command];
  if (!run) {
    process.stderr.write(`ai-envelope: unknown command '${command}'\n\n${USAGE}`);
    return 2;
  }
  try {
    return await run(rest);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`ai-envelope ${command}: ${err.message}\n`);
      return 2;
    }
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT' || e.code === 'EADDRINUSE' || e.code === 'EACCES') {
      process.stderr.write(`ai-envelope ${command}: ${e.message}\n`);
      return 1;
    }
    throw err;
  }
}

process.exitCode = await main(process.argv.slice(2));
