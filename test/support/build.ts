// vitest global setup: the end-to-end tests run the built CLI, so build it first. Type errors are
// reported but do not stop the run here (tsc still emits); `npm test` type-checks strictly first.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export default function setup(): void {
  const root = fileURLToPath(new URL('../..', import.meta.url));
  const r = spawnSync(process.execPath, [`${root}node_modules/typescript/bin/tsc`, '-p', `${root}tsconfig.json`], { cwd: root, encoding: 'utf8' });
  if (r.status !== 0) process.stderr.write(`warning: the build reported errors; end-to-end tests may run an outdated CLI\n${r.stdout}${r.stderr}`);
}
