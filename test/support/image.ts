// What the image runs, read from the Dockerfile itself, and how to run the same command here: the
// image's /app is this checkout (with dist/ built) and its `node` is the Node running the tests.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url)).replace(/\/$/, '');
export const IMAGE_APP_DIR = '/app';

function instruction(text: string, name: string): string[] | undefined {
  const joined = text.replace(/\\\n/g, ' ');
  const lines = joined.split('\n').filter((l) => new RegExp(`^\\s*${name}\\s`, 'i').test(l));
  const last = lines.at(-1);
  if (!last) return undefined;
  const value = last.replace(new RegExp(`^\\s*${name}\\s+`, 'i'), '').trim();
  // Only the exec (JSON) form: the shell form would put /bin/sh in front and swallow signals.
  if (!value.startsWith('[')) throw new Error(`${name} must use the exec form, got: ${value}`);
  return JSON.parse(value) as string[];
}

/** ENTRYPOINT and CMD of the final stage (exec form). */
export function imageCommand(dockerfile = `${ROOT}/Dockerfile`): { entrypoint: string[]; cmd: string[]; user: string | undefined } {
  const text = readFileSync(dockerfile, 'utf8');
  const stages = text.split(/^FROM\s/im);
  const final = `FROM ${stages.at(-1) ?? ''}`;
  const user = /^\s*USER\s+(\S+)/im.exec(final)?.[1];
  return { entrypoint: instruction(final, 'ENTRYPOINT') ?? [], cmd: instruction(final, 'CMD') ?? [], user };
}

/** A container's command line as the image would run it, mapped onto this machine. */
export function localCommand(argv: string[], paths: Record<string, string> = {}): string[] {
  const map = { [IMAGE_APP_DIR]: ROOT, ...paths };
  return argv.map((arg, i) => {
    if (i === 0 && arg === 'node') return process.execPath;
    for (const [from, to] of Object.entries(map).sort((a, b) => b[0].length - a[0].length)) {
      if (arg === from || arg.startsWith(`${from}/`)) return `${to}${arg.slice(from.length)}`;
    }
    return arg;
  });
}
