// The operator's billing flags, checked once at start: a bad value is a usage error naming the flag.
import type { BillingOptions } from './reconciler.ts';
import { KEEP_DAYS } from './daily.ts';

export const BILLING_FLAGS = {
  'billing-secret': { type: 'string' },
  'billing-secret-key': { type: 'string' },
  'billing-url': { type: 'string' },
  'billing-interval-seconds': { type: 'string' },
  'billing-days': { type: 'string' },
  'billing-drift-ratio': { type: 'string' },
  'billing-drift-usd': { type: 'string' },
} as const;

export type BillingFlags = Partial<Record<keyof typeof BILLING_FLAGS, string>>;

export const BILLING_USAGE = `           [--billing-secret NAME] [--billing-secret-key adminKey] [--billing-url https://api.openai.com/v1]
           [--billing-interval-seconds 3600] [--billing-days 7] [--billing-drift-ratio 0.05] [--billing-drift-usd 0.01]`;

export const BILLING_HELP = `        --billing-secret: a Secret of --namespace holding an OpenAI admin key (--billing-secret-key); the
        leader then compares each AIBudget with spec.reconcile.projectId against the organization
        Costs API for the last --billing-days UTC days (at most ${KEEP_DAYS}), every --billing-interval-seconds,
        and reports drift past both --billing-drift-ratio and --billing-drift-usd. Without it: off.`;

export function billingOptions(v: BillingFlags, namespace: string, fail: (message: string) => never): BillingOptions {
  const number = (flag: keyof BillingFlags, fallback: number, ok: (n: number) => boolean, what: string) => {
    const raw = v[flag];
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(n) || !ok(n)) fail(`--${flag} must be ${what}, got '${raw}'`);
    return n;
  };
  const intervalSeconds = number('billing-interval-seconds', 3600, (n) => Number.isInteger(n) && n >= 1, 'a whole number of seconds, at least 1');
  const days = number('billing-days', 7, (n) => Number.isInteger(n) && n >= 1 && n <= KEEP_DAYS, `a whole number of days from 1 to ${KEEP_DAYS}`);
  const ratio = number('billing-drift-ratio', 0.05, (n) => n > 0 && n <= 1, 'a fraction above 0 and at most 1');
  const minUSD = number('billing-drift-usd', 0.01, (n) => n >= 0, 'an amount in USD, 0 or more');
  const baseURL = v['billing-url'] ?? 'https://api.openai.com/v1';
  if (!/^https?:\/\/[^\s/]+(\/[^\s]*)?$/.test(baseURL)) fail(`--billing-url must be an http(s) URL such as https://api.openai.com/v1, got '${baseURL}'`);
  const secret = v['billing-secret'];
  if (secret !== undefined && !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(secret)) fail(`--billing-secret must be a Secret name, got '${secret}'`);
  const key = v['billing-secret-key'] ?? 'adminKey';
  if (!/^[-._a-zA-Z0-9]+$/.test(key)) fail(`--billing-secret-key must be a key of a Secret, got '${key}'`);
  return {
    ...(secret ? { adminKeySecret: { namespace, name: secret, key } } : {}),
    baseURL,
    intervalMs: intervalSeconds * 1000,
    firstDelayMs: Math.min(intervalSeconds, 30) * 1000,
    days,
    threshold: { ratio, minUSD },
    timeoutMs: 30_000,
  };
}
