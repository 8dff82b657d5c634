// What the backstop polls of the config and the key files compare before they read anything.
// Every async fs call is a round trip through libuv's thread pool, a wake-up on two threads; the
// polls read with open, stat, read and close each, and at rest they were most of an idle
// sidecar's wake-ups (bench: "thread wake-ups at rest"). A synchronous stat of a local file or a
// ConfigMap volume (tmpfs) takes microseconds and wakes nothing.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { isManifestName } from '../../crds/manifests.ts';

/** A file's (or a config folder's manifests') identity, size and change times. */
export interface Stamp {
  key: string;
  /** The newest change time seen, in ms since the epoch. */
  newestMs: number;
}

// Change times tick with the kernel's coarse clock (a few ms): two same-size writes that close
// together can leave equal stamps. Files changed this recently are read whatever the stamp says.
export const SETTLE_MS = 3_000;

function fileStamp(path: string): Stamp {
  const s = statSync(path, { bigint: true });
  return { key: `${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`, newestMs: Math.max(Number(s.mtimeMs), Number(s.ctimeMs)) };
}

/** The stamp of a file, or of the manifests directly in a folder (as `readSources` reads them); follows symlinks, so a ConfigMap's `..data` swap changes it. */
export function stampOf(path: string): Stamp {
  try {
    const top = statSync(path);
    if (!top.isDirectory()) return fileStamp(path);
    let newestMs = 0;
    const parts: string[] = [];
    for (const name of readdirSync(path).filter(isManifestName).sort()) {
      const s = fileStamp(join(path, name));
      parts.push(`${name}=${s.key}`);
      newestMs = Math.max(newestMs, s.newestMs);
    }
    return { key: parts.join('/'), newestMs };
  } catch (err) {
    // Missing or unreadable: a stamp of its own, so the read that reports why happens once, and
    // again when the file comes back.
    return { key: `error:${(err as NodeJS.ErrnoException).code ?? String(err)}`, newestMs: 0 };
  }
}

/** Whether a poll must read: the stamp moved since the last read, or the files are too fresh to trust it. */
export function needsRead(last: Stamp | undefined, now: Stamp, nowMs: number): boolean {
  return last === undefined || last.key !== now.key || nowMs - now.newestMs < SETTLE_MS;
}
