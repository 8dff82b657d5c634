// Starting and stopping what the bench compares. Every process is a child of the bench, bound to
// 127.0.0.1 on a port the kernel picks, and tracked so that it is killed on any way out.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { SIDECAR_MALLOC_ARENA_MAX, SIDECAR_NODE_OPTIONS } from '../sidecar/runtime.ts';

import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { envelopeManifests, SECRET_NAME, type EnvelopeProfile } from './envelope-config.ts';
import { CHAT_BODY } from './load.ts';
import { processTree } from './measure.ts';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
// BENCH_CLI: another build's cli.js (a copy of dist/), to A/B two builds in alternating runs.
const CLI = process.env.BENCH_CLI ?? join(ROOT, 'dist', 'cli.js');
// The sidecar's malloc setting (sidecar/runtime.ts) for the sidecar and the bare Node proxy alike,
// unless the bench itself runs with one (an experiment).
const MALLOC_ARENA_MAX = process.env.MALLOC_ARENA_MAX ?? SIDECAR_MALLOC_ARENA_MAX;
const PORTKEY = join(ROOT, 'node_modules', '@portkey-ai', 'gateway', 'build', 'start-server.js');
const preload = (file: string) => pathToFileURL(fileURLToPath(new URL(file, import.meta.url))).href;
const LOOPBACK = preload('./loopback.ts');
const PORTKEY_STREAMS = preload('./portkey-streams.ts');
const NGINX = '/usr/sbin/nginx';
/** What loopback.ts writes on stderr when a listener is bound. */
const LISTENING_MARKER = 'BENCH_LISTENING';
/** What the app would send; proxies that hold the key themselves drop it. */
export const APP_KEY = 'sk-bench-app-key';
const UPSTREAM_KEY = 'sk-bench-upstream-key';

export type TargetName = 'direct' | 'nginx' | 'node-floor' | 'portkey' | 'envelope-none' | 'envelope-full';
export const TARGET_NAMES: TargetName[] = ['direct', 'nginx', 'node-floor', 'portkey', 'envelope-none', 'envelope-full'];
export const LABELS: Record<TargetName, string> = {
  direct: 'direct (floor)',
  nginx: 'nginx',
  'node-floor': 'bare Node proxy',
  portkey: 'Portkey gateway',
  'envelope-none': 'ai-envelope, no policy',
  'envelope-full': 'ai-envelope, all policies',
};

export interface GcPoint {
  /** performance.now() of the bench, ms. */
  at: number;
  liveMB: number;
}

export interface Target {
  name: TargetName;
  /** Origin, without /v1. */
  origin: string;
  /** Headers every request to this target carries, besides content-type. */
  headers: Record<string, string>;
  /** The proxy's processes, for CPU and RSS; empty for direct. */
  pids: number[];
  /** The sidecar's JSON log, one line per request. */
  logFile?: string;
  /** Written when the sidecar exits, under --profile. */
  profileFile?: string;
  /**
   * The live heap after each full (mark-compact) GC so far, from V8's --trace-gc lines in the log,
   * on the bench's performance.now() clock. RSS keeps the high-water mark of a heap V8 grows
   * lazily; this is what a leak would raise.
   */
  majorGCs?: () => GcPoint[];
  stop(): Promise<void>;
}

const children = new Set<ChildProcess>();

function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** SIGTERM, then SIGKILL if it has not exited within the grace time. */
export function stopChild(child: ChildProcess, graceMs = 5_000): Promise<void> {
  if (exited(child)) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

export async function stopAll(): Promise<void> {
  await Promise.all([...children].map((c) => stopChild(c)));
}

/** Last resort on process exit: no child outlives the bench, even when cleanup could not run. */
export function killAllNow(): void {
  for (const c of children) if (!exited(c)) c.kill('SIGKILL');
}

/** Keeps the last few KB a child wrote, to explain a failure. */
function tail(stream: NodeJS.ReadableStream | null, keep = 4_096): () => string {
  let text = '';
  stream?.on('data', (d: Buffer) => {
    text = (text + d.toString('utf8')).slice(-keep);
  });
  return () => text;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined> | T | undefined, child?: ChildProcess, output?: () => string): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (child && exited(child)) throw new Error(`${what}: the process exited (${child.exitCode ?? child.signalCode})\n${output?.() ?? ''}`);
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch {
      // Not up yet.
    }
    if (performance.now() > deadline) throw new Error(`${what}: not ready after ${timeoutMs} ms\n${output?.() ?? ''}`);
    await sleep(50);
  }
}

async function okStatus(url: string, headers: Record<string, string> = {}, body?: string): Promise<true | undefined> {
  const init = body === undefined ? { headers } : { method: 'POST', body, headers: { ...headers, 'content-type': 'application/json' } };
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(2_000) });
  await res.arrayBuffer();
  return res.ok ? true : undefined;
}

/** A port the kernel just handed out; only nginx needs one chosen before it starts. */
async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as AddressInfo;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

export interface SimulatorProcess {
  origin: string;
  pid: number;
  setOptions(o: { streamDelayMs?: number; latencyMs?: number }): Promise<void>;
  stop(): Promise<void>;
}

export function assertBuilt(): void {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: build first (npm run build), or run the bench with npm run bench`);
}

export async function startSimulator(): Promise<SimulatorProcess> {
  // Keeping no requests: kept ones outlived the simulator's young generation, and its pauses
  // (scavenges of 2-3 ms every ~0.7 s as its heap grew) stalled the calls of whichever target ran.
  const child = track(spawn(process.execPath, [CLI, 'simulator', '--port', '0', '--record-limit', '0'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] }));
  const err = tail(child.stderr);
  const lines = createInterface({ input: child.stdout! });
  const first = new Promise<string>((resolve) => lines.once('line', resolve));
  const line = await waitFor('simulator', 15_000, () => Promise.race([first, sleep(100).then(() => undefined)]), child, err);
  const { port } = JSON.parse(line) as { port: number };
  const origin = `http://127.0.0.1:${port}`;
  const control = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${origin}/_sim/${path}`, { method, ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }) });
    await res.arrayBuffer();
    if (!res.ok) throw new Error(`simulator ${method} /_sim/${path}: ${res.status}`);
  };
  return {
    origin,
    pid: child.pid!,
    setOptions: (o) => control('POST', 'options', o),
    stop: () => stopChild(child),
  };
}

export function directTarget(sim: SimulatorProcess): Target {
  return { name: 'direct', origin: sim.origin, headers: { authorization: `Bearer ${APP_KEY}` }, pids: [], stop: async () => {} };
}

function ensureNginx(): void {
  if (existsSync(NGINX)) return;
  process.stderr.write('nginx is missing: installing it with apt-get\n');
  execFileSync('apt-get', ['install', '-y', 'nginx'], { stdio: 'inherit' });
}

function nginxConf(dir: string, port: number, upstreamPort: number): string {
  // One worker: the sidecar and Portkey are single-threaded too, and a sidecar gets a small CPU
  // share. Access log on, as shipped: the sidecar also writes a line per request.
  return `daemon off;
master_process on;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log ${dir}/access.log;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  upstream simulator {
    server 127.0.0.1:${upstreamPort};
    keepalive 128;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://simulator;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }
}
`;
}

export async function startNginx(sim: SimulatorProcess, workDir: string): Promise<Target> {
  ensureNginx();
  const dir = join(workDir, 'nginx');
  mkdirSync(dir, { recursive: true });
  // nginx workers drop to an unprivileged user when the bench runs as root.
  chmodSync(workDir, 0o755);
  chmodSync(dir, 0o777);
  const upstreamPort = Number(new URL(sim.origin).port);
  let lastError = '';
  // The port is chosen before nginx binds it, so another process may take it first: retry.
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const conf = join(dir, 'nginx.conf');
    writeFileSync(conf, nginxConf(dir, port, upstreamPort));
    const child = track(spawn(NGINX, ['-p', dir, '-c', conf, '-e', join(dir, 'error.log')], { stdio: ['ignore', 'ignore', 'pipe'] }));
    const err = tail(child.stderr);
    const origin = `http://127.0.0.1:${port}`;
    try {
      await waitFor('nginx', 10_000, () => okStatus(`${origin}/v1/models`, { authorization: `Bearer ${APP_KEY}` }), child, err);
    } catch (e) {
      lastError = (e as Error).message;
      await stopChild(child);
      continue;
    }
    return { name: 'nginx', origin, headers: { authorization: `Bearer ${APP_KEY}` }, pids: processTree(child.pid!), stop: () => stopChild(child) };
  }
  throw new Error(`nginx would not start: ${lastError}`);
}

const NODE_FLOOR = fileURLToPath(new URL('node-floor.mjs', import.meta.url));
const NODE_FLOOR_HTTP = fileURLToPath(new URL('node-floor-http.mjs', import.meta.url));

/**
 * The bare Node proxy (node-floor.mjs), with the sidecar's heap flags and malloc setting unless
 * told otherwise; `client: 'http'` forwards with node:http instead of undici (node-floor-http.mjs).
 */
export async function startNodeFloor(sim: SimulatorProcess, nodeOptions = SIDECAR_NODE_OPTIONS, client: 'undici' | 'http' = 'undici'): Promise<Target> {
  const child = track(spawn(process.execPath, [client === 'http' ? NODE_FLOOR_HTTP : NODE_FLOOR, sim.origin], { env: { ...process.env, MALLOC_ARENA_MAX, NODE_OPTIONS: nodeOptions }, stdio: ['ignore', 'pipe', 'pipe'] }));
  const err = tail(child.stderr);
  let port: number | undefined;
  child.stdout?.once('data', (d: Buffer) => (port = (JSON.parse(String(d)) as { port: number }).port));
  await waitFor('bare Node proxy', 10_000, () => port, child, err);
  return { name: 'node-floor', origin: `http://127.0.0.1:${port}`, headers: {}, pids: [child.pid!], stop: () => stopChild(child) };
}

function listeningPorts(stream: NodeJS.ReadableStream | null): number[] {
  const ports: number[] = [];
  if (stream) {
    createInterface({ input: stream }).on('line', (l) => {
      if (l.startsWith(`${LISTENING_MARKER} `)) ports.push(Number(l.slice(LISTENING_MARKER.length + 1)));
    });
  }
  return ports;
}

export async function startPortkey(sim: SimulatorProcess): Promise<Target> {
  if (!existsSync(PORTKEY)) throw new Error(`${PORTKEY} is missing: npm ci installs @portkey-ai/gateway`);
  const child = track(
    spawn(process.execPath, ['--import', LOOPBACK, '--import', PORTKEY_STREAMS, PORTKEY, '--port=0', '--headless'], {
      cwd: ROOT,
      env: { ...process.env, NODE_ENV: 'production' },
      stdio: ['ignore', 'ignore', 'pipe'],
    }),
  );
  const err = tail(child.stderr);
  const ports = listeningPorts(child.stderr);
  const port = await waitFor('portkey', 20_000, () => ports[0], child, err);
  const origin = `http://127.0.0.1:${port}`;
  const headers = {
    authorization: `Bearer ${UPSTREAM_KEY}`,
    'x-portkey-provider': 'openai',
    'x-portkey-custom-host': `${sim.origin}/v1`,
  };
  // A chat call, not GET /v1/models: Portkey's proxy path hits the same immutable-headers bug.
  await waitFor('portkey', 20_000, () => okStatus(`${origin}/v1/chat/completions`, headers, CHAT_BODY), child, err);
  return { name: 'portkey', origin, headers, pids: processTree(child.pid!), stop: () => stopChild(child) };
}

// [pid:0x…]   10182 ms: Mark-Compact 140.2 (205.7) -> 51.0 (205.7) MB, …
const MARK_COMPACT = /^\[\d+:0x[0-9a-f]+\]\s+(\d+) ms: Mark-Compact[^\d]*[\d.]+ \([\d.]+\) -> ([\d.]+) \(/;

/** V8 counts from the isolate's start, a few ms after the spawn: close enough for seconds-long windows. */
function majorGCs(logFile: string, spawnedAt: number): GcPoint[] {
  const points: GcPoint[] = [];
  for (const line of readFileSync(logFile, 'utf8').split('\n')) {
    const m = MARK_COMPACT.exec(line);
    if (m) points.push({ at: spawnedAt + Number(m[1]), liveMB: Number(m[2]) });
  }
  return points;
}

export interface EnvelopeOptions {
  /** Write a V8 CPU profile here when the sidecar exits. */
  profileDir?: string;
  /** NODE_OPTIONS of the sidecar: the injected pods' (sidecar/runtime.ts) unless an experiment says otherwise. */
  nodeOptions?: string;
}

export async function startEnvelope(profile: EnvelopeProfile, sim: SimulatorProcess, workDir: string, opts: EnvelopeOptions = {}): Promise<Target> {
  const name: TargetName = profile === 'none' ? 'envelope-none' : 'envelope-full';
  const dir = join(workDir, name);
  const secrets = join(dir, 'secrets', SECRET_NAME);
  const state = join(dir, 'state');
  mkdirSync(secrets, { recursive: true });
  mkdirSync(state, { recursive: true });
  writeFileSync(join(secrets, 'apiKey'), UPSTREAM_KEY);
  // The config in a folder of its own, as a ConfigMap volume is: the sidecar watches the config's
  // folder, and a log written beside it would wake the sidecar on every write.
  mkdirSync(join(dir, 'config'), { recursive: true });
  const config = join(dir, 'config', 'routes.yaml');
  writeFileSync(config, envelopeManifests(profile, `${sim.origin}/v1`));
  const logFile = join(dir, 'sidecar.log');
  const logFd = openSync(logFile, 'w');
  const profileName = `${name}-${new Date().toISOString().replace(/[:.]/g, '-')}.cpuprofile`;
  // --trace-gc: one line per GC on stdout, among the JSON lines (which it never splits).
  const nodeFlags = ['--trace-gc', ...(process.env.BENCH_SIDECAR_FLAGS?.split(' ').filter(Boolean) ?? []), ...(opts.profileDir ? ['--cpu-prof', '--cpu-prof-dir', opts.profileDir, '--cpu-prof-name', profileName] : [])];
  if (opts.profileDir) mkdirSync(opts.profileDir, { recursive: true });
  const args = [...nodeFlags, CLI, 'sidecar', '-f', config, '--port', '0', '--admin-port', '0', '--admin-host', '127.0.0.1'];
  args.push('--secrets-dir', join(dir, 'secrets'), '--state-dir', state, '--grace-seconds', '2');
  const spawnedAt = performance.now();
  const child = track(spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, NODE_ENV: 'production', MALLOC_ARENA_MAX, NODE_OPTIONS: opts.nodeOptions ?? SIDECAR_NODE_OPTIONS }, stdio: ['ignore', logFd, 'pipe'] }));
  closeSync(logFd);
  const err = tail(child.stderr);
  const logTail = () => `${err()}\n${readFileSync(logFile, 'utf8').slice(-4_096)}`;
  const started = await waitFor(
    name,
    20_000,
    () => {
      for (const line of readFileSync(logFile, 'utf8').split('\n')) {
        if (!line.includes('"started"')) continue;
        const rec = JSON.parse(line) as { event?: string; port?: number; admin_port?: number };
        if (rec.event === 'started' && rec.port && rec.admin_port) return { port: rec.port, admin: rec.admin_port };
      }
      return undefined;
    },
    child,
    logTail,
  );
  await waitFor(`${name} readiness`, 20_000, () => okStatus(`http://127.0.0.1:${started.admin}/readyz`), child, logTail);
  return {
    name,
    origin: `http://127.0.0.1:${started.port}`,
    headers: { authorization: `Bearer ${APP_KEY}`, 'x-envelope-user': 'bench-user-42' },
    pids: [child.pid!],
    logFile,
    ...(opts.profileDir ? { profileFile: join(opts.profileDir, profileName) } : {}),
    majorGCs: () => majorGCs(logFile, spawnedAt),
    // The grace period is 2 s; SIGTERM lets the sidecar drain and write its CPU profile.
    stop: () => stopChild(child, 15_000),
  };
}
