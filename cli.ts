#!/usr/bin/env node
// The `ai-envelope` command. Each subcommand parses its own flags and calls into its part.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { stringify } from 'yaml';
import { readSources, parseManifests, formatProblem } from './crds/manifests.ts';
import { crossResourceProblems, loadConfig, renderConfig } from './crds/render.ts';
import { BILLING_FLAGS, BILLING_HELP, BILLING_USAGE, billingOptions } from './operator/billing/options.ts';

const USAGE = `Usage: ai-envelope <command> [options]

Commands:
  sidecar -f PATH [--port 4141] [--admin-port 4142] [--admin-host 0.0.0.0] [--secrets-dir DIR] [--state-dir DIR]
          [--redis-url URL] [--grace-seconds 25]
        Run the proxy. PATH: a YAML file or folder of AIRoute/AIBudget manifests, or a rendered
        config; reloaded when it changes. --state-dir: where spend persists across restarts.
        --redis-url (or AI_ENVELOPE_REDIS_URL): share limits and budgets with every replica.
  validate -f PATH     Check manifests; exit 1 with one line per problem.
  render -f PATH       Print the sidecar config these manifests produce (defaults applied).
  crds                 Print the CustomResourceDefinitions (the YAML in crds/), for kubectl apply -f -.
  simulator [--port 4010] [--api-key KEY]... [--admin-key KEY]... [--project KEY=PROJ]... [--stream-delay-ms 0] [--latency-ms 0] [--record-limit 1000]
            [--batch-step-ms 50] [--batch-lines-per-step 0] [--answers FILE]
        Run the local OpenAI-compatible simulator (for trying the sidecar without a key).
        --answers: scripted answers per input, prompt and model (YAML or JSON; simulator/README.md).
        --record-limit: the latest requests kept for GET /_sim/requests (0: none).
  operator [--kubeconfig FILE] [--namespace NS] [--metrics-port 8080] [--metrics-host 0.0.0.0]
           [--lease-seconds 15] [--spend-interval-seconds 15] [--resync-seconds 60]
           [--watch-timeout-seconds 300] [--workers 8]
           [--webhook-port 9443] [--webhook-host 0.0.0.0] [--webhook-config ai-envelope-injector]
           [--webhook-service ai-envelope-webhook] [--webhook-url URL | --webhook-cert-dir DIR] [--no-webhook]
           [--sidecar-image IMAGE] [--sidecar-proxy-port 4141] [--sidecar-admin-port 4142]
           [--native-sidecar auto|always|never]
${BILLING_USAGE}
        Run the operator: AIRoutes and AIBudgets into ConfigMaps and status, spend read from the
        sidecars. In-cluster config unless --kubeconfig; the leader-election Lease lives in --namespace
        (default: POD_NAMESPACE). --metrics-port serves /metrics, /healthz, /readyz (0: any free port).
        --watch-timeout-seconds 0 leaves each watch's length to the API server.
        Every replica serves the injection webhook on --webhook-port with a certificate from the
        operator's own CA (kept in a Secret of --namespace); the leader keeps the caBundle of the
        MutatingWebhookConfiguration --webhook-config current. --webhook-service: the Service named
        in the certificate. --webhook-url https://HOST:PORT: for an operator outside the cluster, where
        the API server reaches it (written into the configuration). --webhook-cert-dir: serve tls.crt
        and tls.key from there instead (cert-manager), writing nothing. --no-webhook: no injection.
        The sidecar it injects: --sidecar-image and ports; --native-sidecar auto decides from the
        server version (1.29+). More settings as JSON in AI_ENVELOPE_INJECT; flags win.
${BILLING_HELP}
  help                 Show this text.
`;

const EVAL_USAGE = `  eval -f SUITE --routes PATH [--compare PATH2] [--out DIR] ...   Run an eval suite through a route's
        envelope; 'ai-envelope eval --help' for every flag (README: Evals).
  review list|show|approve|reject|edit ...   Work a sidecar's human review queue (README: Review queue).
  batch submit|status|results ...   Batch API jobs from a JSONL file through the sidecar; 'ai-envelope
        batch --help' for every flag and exit code (README: The batch command).
  cost -f SCENARIOS [--days 30] [--format text|json] [--from-logs FILE...] [--from-eval REPORT.json] [--routes PATH]
       [--budget PATH]   Estimate a month's spend before launch, priced as the sidecar prices;
        'ai-envelope cost --help' for every flag (README: Cost estimates).
`;

class UsageError extends Error {}

/**
 * Serves until SIGTERM or SIGINT, then shuts down and exits 0. Explicitly: pooled upstream and
 * API server connections would otherwise keep the process alive.
 */
function untilSignal(log: { info(obj: object, msg: string): void }, shutdown: () => Promise<unknown>): Promise<number> {
  return new Promise((resolve) => {
    const stop = (signal: string) => {
      log.info({ event: 'signal', signal }, 'stopping');
      void shutdown().then(() => {
        resolve(0);
        process.exit(0);
      });
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}

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

async function crds(args: string[]): Promise<number> {
  parse(args, {});
  const { crdsYaml } = await import('./crds/generate.ts');
  process.stdout.write(crdsYaml());
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
    'admin-host': { type: 'string' },
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
    ...(v['admin-host'] ? { adminHost: v['admin-host'] } : {}),
    graceSeconds: int(v['grace-seconds'], 'grace-seconds', 25),
    pollMs: int(v['poll-ms'], 'poll-ms', 2000),
    log,
  });
  return untilSignal(log, running.shutdown);
}

/** `--project KEY=proj_x`: the project the simulator bills that key's calls to. */
function keyProjects(pairs: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of pairs) {
    const eq = p.indexOf('=');
    if (eq <= 0 || eq === p.length - 1) throw new UsageError(`--project must be KEY=PROJECT_ID, got '${p}'`);
    out[p.slice(0, eq)] = p.slice(eq + 1);
  }
  return out;
}

async function simulator(args: string[]): Promise<number> {
  const v = parse(args, {
    host: { type: 'string' },
    port: { type: 'string' },
    'api-key': { type: 'string', multiple: true },
    'admin-key': { type: 'string', multiple: true },
    project: { type: 'string', multiple: true },
    'stream-delay-ms': { type: 'string' },
    'latency-ms': { type: 'string' },
    'batch-step-ms': { type: 'string' },
    'batch-lines-per-step': { type: 'string' },
    answers: { type: 'string' },
    'record-limit': { type: 'string' },
  });
  const { startSimulator, loadAnswers } = await import('./simulator/index.ts');
  const sim = await startSimulator({
    ...(v.answers ? { answers: await loadAnswers(v.answers) } : {}),
    host: v.host ?? '127.0.0.1',
    port: int(v.port, 'port', 4010),
    ...(v['api-key'] ? { apiKeys: v['api-key'] } : {}),
    ...(v['admin-key'] ? { adminKeys: v['admin-key'] } : {}),
    projects: keyProjects(v.project ?? []),
    streamDelayMs: int(v['stream-delay-ms'], 'stream-delay-ms', 0),
    latencyMs: int(v['latency-ms'], 'latency-ms', 0),
    batchStepMs: int(v['batch-step-ms'], 'batch-step-ms', 50),
    batchLinesPerStep: int(v['batch-lines-per-step'], 'batch-lines-per-step', 0),
    recordLimit: int(v['record-limit'], 'record-limit', 1000),
  });
  // One parseable line, so a parent process that asked for port 0 learns where it is.
  process.stdout.write(`${JSON.stringify({ url: sim.url, port: sim.port })}\n`);
  return new Promise((resolve) => {
    const stop = () => void sim.close().then(() => resolve(0));
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
}

async function operator(args: string[]): Promise<number> {
  const v = parse(args, {
    kubeconfig: { type: 'string' },
    namespace: { type: 'string' },
    'metrics-port': { type: 'string' },
    'metrics-host': { type: 'string' },
    'lease-seconds': { type: 'string' },
    'spend-interval-seconds': { type: 'string' },
    'resync-seconds': { type: 'string' },
    'watch-timeout-seconds': { type: 'string' },
    workers: { type: 'string' },
    'webhook-port': { type: 'string' },
    'webhook-host': { type: 'string' },
    'webhook-config': { type: 'string' },
    'webhook-service': { type: 'string' },
    'webhook-url': { type: 'string' },
    'webhook-cert-dir': { type: 'string' },
    'no-webhook': { type: 'boolean' },
    'sidecar-image': { type: 'string' },
    'sidecar-proxy-port': { type: 'string' },
    'sidecar-admin-port': { type: 'string' },
    'native-sidecar': { type: 'string' },
    ...BILLING_FLAGS,
  });
  const namespace = v.namespace ?? process.env.POD_NAMESPACE;
  if (!namespace) throw new UsageError('--namespace (or POD_NAMESPACE) is required: the leader-election Lease lives there');
  const positive = (value: string | undefined, name: string, fallback: number) => {
    const n = int(value, name, fallback);
    if (n === 0) throw new UsageError(`--${name} must be greater than 0`);
    return n;
  };
  const webhook = await webhookOptions(v);
  const billing = billingOptions(v, namespace, (m) => {
    throw new UsageError(m);
  });
  const { startOperator } = await import('./operator/main.ts');
  const { createOperatorLogger } = await import('./operator/log.ts');
  const log = createOperatorLogger();
  const running = await startOperator({
    ...(webhook ? { webhook } : {}),
    ...(v.kubeconfig ? { kubeconfig: v.kubeconfig } : {}),
    namespace,
    metricsPort: int(v['metrics-port'], 'metrics-port', 8080),
    metricsHost: v['metrics-host'] ?? '0.0.0.0',
    leaseSeconds: positive(v['lease-seconds'], 'lease-seconds', 15),
    spendIntervalSeconds: positive(v['spend-interval-seconds'], 'spend-interval-seconds', 15),
    resyncSeconds: positive(v['resync-seconds'], 'resync-seconds', 60),
    watchTimeoutSeconds: int(v['watch-timeout-seconds'], 'watch-timeout-seconds', 300),
    workers: positive(v.workers, 'workers', 8),
    billing,
    log,
  });
  return untilSignal(log, running.shutdown);
}

const WEBHOOK_FLAGS = ['webhook-port', 'webhook-host', 'webhook-config', 'webhook-service', 'webhook-url', 'webhook-cert-dir', 'sidecar-image', 'sidecar-proxy-port', 'sidecar-admin-port', 'native-sidecar'] as const;

/** The operator's webhook flags, checked, merged over AI_ENVELOPE_INJECT; undefined with --no-webhook. */
async function webhookOptions(v: Partial<Record<(typeof WEBHOOK_FLAGS)[number], string>> & { 'no-webhook'?: boolean }) {
  if (v['no-webhook']) {
    const given = WEBHOOK_FLAGS.filter((f) => v[f] !== undefined);
    if (given.length > 0) throw new UsageError(`--no-webhook cannot be combined with ${given.map((f) => `--${f}`).join(', ')}`);
    return undefined;
  }
  const port = (value: string | undefined, name: string, fallback: number, min: number) => {
    const n = int(value, name, fallback);
    if (n < min || n > 65535) throw new UsageError(`--${name} must be a port number (${min}-65535), got '${value}'`);
    return n;
  };
  const url = v['webhook-url'];
  if (url !== undefined) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new UsageError(`--webhook-url must be a URL like https://127.0.0.1:9443, got '${url}'`);
    }
    if (parsed.protocol !== 'https:' || (parsed.pathname !== '/' && parsed.pathname !== '') || parsed.search || parsed.hash || parsed.username) {
      throw new UsageError(`--webhook-url must be an https base URL without a path (the operator adds its own), got '${url}'`);
    }
    if (v['webhook-cert-dir'] !== undefined) throw new UsageError('--webhook-url and --webhook-cert-dir exclude each other: with cert-manager the chart\'s Service is the address');
  }
  const native = v['native-sidecar'];
  if (native !== undefined && native !== 'auto' && native !== 'always' && native !== 'never') throw new UsageError(`--native-sidecar must be auto, always or never, got '${native}'`);
  const image = v['sidecar-image'];
  if (image !== undefined && !/^\S+$/.test(image)) throw new UsageError(`--sidecar-image must be an image reference, got '${image}'`);
  const proxyPort = v['sidecar-proxy-port'] === undefined ? undefined : port(v['sidecar-proxy-port'], 'sidecar-proxy-port', 4141, 1);
  const adminPort = v['sidecar-admin-port'] === undefined ? undefined : port(v['sidecar-admin-port'], 'sidecar-admin-port', 4142, 1);
  if (proxyPort !== undefined && proxyPort === adminPort) throw new UsageError('--sidecar-proxy-port and --sidecar-admin-port must differ');
  const { injectOptionsFromEnv } = await import('./operator/webhook/server.ts');
  let fromEnv;
  try {
    fromEnv = injectOptionsFromEnv();
  } catch (err) {
    const message = (err as Error).message;
    throw new UsageError(message.startsWith('AI_ENVELOPE_INJECT') ? message : `AI_ENVELOPE_INJECT: ${message}`);
  }
  const inject = {
    ...fromEnv,
    ...(image ? { image } : {}),
    ...(proxyPort !== undefined ? { proxyPort } : {}),
    ...(adminPort !== undefined ? { adminPort } : {}),
    ...(native ? { nativeSidecar: native as 'auto' | 'always' | 'never' } : {}),
  };
  return {
    port: port(v['webhook-port'], 'webhook-port', 9443, 0),
    host: v['webhook-host'] ?? '0.0.0.0',
    ...(v['webhook-config'] ? { configName: v['webhook-config'] } : {}),
    ...(v['webhook-service'] ? { serviceName: v['webhook-service'] } : {}),
    ...(url ? { url: url.replace(/\/+$/, '') } : {}),
    ...(v['webhook-cert-dir'] ? { certDir: v['webhook-cert-dir'] } : {}),
    inject,
  };
}

async function evals(args: string[]): Promise<number> {
  const { evalCommand, EVAL_USAGE: full } = await import('./eval/command.ts');
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(full);
    return 0;
  }
  return evalCommand(args);
}

async function cost(args: string[]): Promise<number> {
  const { costCommand } = await import('./cost/command.ts');
  return costCommand(args);
}

async function review(args: string[]): Promise<number> {
  const { reviewCommand } = await import('./sidecar/review/cli.ts');
  return reviewCommand(args);
}

async function batch(args: string[]): Promise<number> {
  const { batchCommand, BATCH_USAGE } = await import('./batch/command.ts');
  if (args.length === 0 || args.includes('--help') || args.includes('-h')) {
    process.stdout.write(BATCH_USAGE);
    return args.length === 0 ? 2 : 0;
  }
  return batchCommand(args);
}

const COMMANDS: Record<string, (args: string[]) => Promise<number>> = { validate, render, crds, sidecar, simulator, operator, eval: evals, review, batch, cost };

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(USAGE + EVAL_USAGE);
    return command ? 0 : 2;
  }
  const run = COMMANDS[command];
  if (!run) {
    process.stderr.write(`ai-envelope: unknown command '${command}'\n\n${USAGE}${EVAL_USAGE}`);
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
