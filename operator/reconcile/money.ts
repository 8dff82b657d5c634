// Budget amounts are counted in integer nano-dollars (as the sidecar counts them) and shown as
// decimal strings, so `kubectl get` never shows 0.30000000000000004.
export const NANO_PER_USD = 1_000_000_000;

/** `123.45`, `0.000123`: at least two decimals, at most nine, no trailing zeros beyond two. */
export function formatUSD(nano: number): string {
  const n = Math.max(0, Math.round(nano));
  const whole = Math.floor(n / NANO_PER_USD);
  let frac = String(n % NANO_PER_USD).padStart(9, '0').replace(/0+$/, '');
  if (frac.length < 2) frac = frac.padEnd(2, '0');
  return `${whole}.${frac}`;
}

/** The inverse of formatUSD; undefined for anything else. */
export function parseUSD(text: unknown): number | undefined {
  if (typeof text !== 'string') return undefined;
  const m = /^(\d+)(?:\.(\d{1,9}))?$/.exec(text.trim());
  if (!m) return undefined;
  return Number(m[1]) * NANO_PER_USD + Number((m[2] ?? '').padEnd(9, '0'));
}

export const usdToNano = (usd: number) => Math.round(usd * NANO_PER_USD);
