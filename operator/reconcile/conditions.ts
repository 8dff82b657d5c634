// Standard conditions (metav1.Condition). The transition time moves only when the status does,
// so `kubectl describe` says since when a route has been failing, not when it was last looked at.
import type { Condition } from '../../crds/schema.ts';

export type { Condition };

export function condition(
  previous: ReadonlyArray<Condition> | undefined,
  next: { type: string; status: 'True' | 'False' | 'Unknown'; reason: string; message: string },
  generation: number | undefined,
  now: number,
): Condition {
  const old = previous?.find((c) => c.type === next.type);
  const lastTransitionTime = old && old.status === next.status ? old.lastTransitionTime : new Date(Math.floor(now / 1000) * 1000).toISOString().replace('.000Z', 'Z');
  return { ...next, lastTransitionTime, ...(generation !== undefined ? { observedGeneration: generation } : {}) };
}
