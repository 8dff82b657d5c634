// The kubelet's part for a ConfigMap volume: the key as a file in the pod, rewritten when the
// ConfigMap changes (the kubelet syncs periodically; every 200 ms here).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

export interface SyncedFile {
  path: string;
  stop(): void;
}

export function syncConfigMapKey(path: string, initial: string, read: () => Promise<string | undefined>): SyncedFile {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, initial);
  const timer = setInterval(() => {
    void read().then((text) => {
      if (text && text !== readFileSync(path, 'utf8')) writeFileSync(path, text);
    }, () => undefined);
  }, 200);
  return { path, stop: () => clearInterval(timer) };
}
