// Whether a call may go, with which model, and what it is allowed to cost: rate and token
// windows (route and per user), then budgets. Before the call the worst case is reserved (input
// tokens estimated with the model's tokenizer, plus the output cap); after it, `settle` replaces
// the reservation by what the upstream's usage says was really spent (invariant 2).
import type { Endpoint, RenderedBudget } from '../../crds/schema.ts';
import { EnvelopeError } from '../errors.ts';
import type { RuntimeRoute } from '../config/runtime.ts';
import { estimateInputTokens, outputCap, type TokenEndpoint } from '../policy/tokens.ts';
import { costNano, priceFor, worstCaseNano, type Price } from '../policy/prices.ts';
import { periodOf, type PeriodSpan } from '../policy/periods.ts';
import { formatGoDuration } from '../upstream/duration.ts';
import type { Usage } from '../upstream/usage.ts';
import { NANO_PER_USD, type BudgetLevel, type BudgetSpec, type BudgetTicket, type StateStore, type WindowSpec, type WindowState, type WindowTicket } from '../state/types.ts';

const MINUTE = 60_000;
const DAY = 86_400_000;
/** A route with no output cap, for a model with no known maximum: what a call may produce at most. */
const DEFAULT_MAX_OUTPUT = 32_768;
/** A reservation that outlives this is counted as spent: long streams settle later and are corrected then. */
const HOLD_EXTRA_MS = 10 * MINUTE;
/** The repair message: the validation errors and the request to try again. */
const REPAIR_OVERHEAD_TOKENS = 512;

type Window = 'requestsPerMinute' | 'tokensPerMinute' | 'requestsPerDay' | 'tokensPerDay';
const WINDOWS: Array<{ name: Window; suffix: string; windowMs: number; bucketMs: number; tokens: boolean }> = [
  { name: 'requestsPerMinute', suffix: 'rpm', windowMs: MINUTE, bucketMs: 1000, tokens: false },
  { name: 'tokensPerMinute', suffix: 'tpm', windowMs: MINUTE, bucketMs: 1000, tokens: true },
  { name: 'requestsPerDay', suffix: 'rpd', windowMs: DAY, bucketMs: MINUTE, tokens: false },
  { name: 'tokensPerDay', suffix: 'tpd', windowMs: DAY, bucketMs: MINUTE, tokens: true },
];

export interface BudgetUse {
  budget: RenderedBudget;
  period: PeriodSpan;
  key: string;
  userKey?: string;
}

export interface Admission {
  model: string;
  /** The budget that moved the call to its degradeTo model. */
  degradedBy?: string;
  /** 0 when the route counts no tokens (no token window, budget or input cap). */
  inputEstimate: number;
  /** Output tokens reserved for: the cap the call runs with. */
  outputReserve: number;
  /** Tokens counted in the token windows before the call. */
  reservedTokens: number;
  windows: WindowState[];
  windowTicket?: WindowTicket;
  tokenWindowKeys: string[];
  budgets: BudgetUse[];
  budgetTicket?: BudgetTicket;
  reservedNano: number;
}

export interface AdmitInput {
  store: StateStore;
  route: RuntimeRoute;
  endpoint: Endpoint;
  body: Record<string, unknown>;
  model: string;
  /** Digest of x-envelope-user, or '-' for calls that name no user (they share one per-user allowance). */
  user: string;
  budgets: RenderedBudget[];
  /** The output contract may need a second call (repair or fallback after an invalid answer). */
  mayCallTwice: boolean;
  now: number;
}

/** Budgets of the route's namespace that cover it. */
export function budgetsFor(route: RuntimeRoute, all: RenderedBudget[]): RenderedBudget[] {
  return all.filter((b) => b.namespace === route.spec.namespace && b.routes.includes(route.name));
}

// Counter keys are rebuilt only when a budget's period or a route's config object changes; both
// were a handful of fresh strings on every call.
const budgetKeys = new WeakMap<RenderedBudget, { period: PeriodSpan; key: string }>();

export function budgetUses(budgets: RenderedBudget[], user: string, now: number): BudgetUse[] {
  return budgets.map((budget) => {
    const period = periodOf(budget.period, now);
    let known = budgetKeys.get(budget);
    if (known?.period !== period) budgetKeys.set(budget, (known = { period, key: `b:${budget.namespace}/${budget.name}:${period.key}` }));
    const key = known.key;
    return { budget, period, key, ...(budget.perUserLimitUSD !== undefined ? { userKey: `${key}:u:${user}` } : {}) };
  });
}

/** Window keys of a route, then of its users (bounded: emptied when full, as a rebuild is cheap). */
const USERS_REMEMBERED = 10_000;
const windowKeys = new WeakMap<RuntimeRoute, { route: string[]; users: Map<string, string[]> }>();

function keysOf(route: RuntimeRoute, user: string | undefined): string[] {
  let known = windowKeys.get(route);
  if (!known) windowKeys.set(route, (known = { route: WINDOWS.map((w) => `rl:${route.id}:${w.suffix}`), users: new Map() }));
  if (user === undefined) return known.route;
  let keys = known.users.get(user);
  if (!keys) {
    if (known.users.size >= USERS_REMEMBERED) known.users.clear();
    known.users.set(user, (keys = WINDOWS.map((w) => `rl:${route.id}:u:${user}:${w.suffix}`)));
  }
  return keys;
}

const usd = (nano: number) => `$${(nano / NANO_PER_USD).toFixed(2)}`;

/** The most expensive of the models this call may end up on, so a fallback never outspends the reservation. */
function worstPrice(route: RuntimeRoute, models: string[]): Price | undefined {
  let worst: Price | undefined;
  for (const m of models) {
    const p = priceFor(m, route.spec.prices);
    if (!p) return undefined;
    if (!worst || p.input + p.output > worst.input + worst.output) worst = p;
  }
  return worst;
}

export async function admit(input: AdmitInput): Promise<Admission> {
  const { store, route, endpoint, body, now } = input;
  let model = input.model;
  const uses = budgetUses(input.budgets, input.user, now);

  // A degrade budget that has run out moves the call to its cheaper model before anything is counted.
  let degradedBy: string | undefined;
  const degrading = uses.filter((u) => u.budget.onExhausted === 'degrade' && u.budget.degradeTo);
  if (degrading.length > 0) {
    const levels = await store.levels(degrading.flatMap((u) => (u.userKey ? [u.key, u.userKey] : [u.key])), now);
    for (const u of degrading) {
      if (exhausted(levels.get(u.key), u.budget.limitUSD) || (u.userKey && exhausted(levels.get(u.userKey), u.budget.perUserLimitUSD))) {
        model = u.budget.degradeTo as string;
        degradedBy = `${u.budget.namespace}/${u.budget.name}`;
        break;
      }
    }
  }

  // Counting tokens is the costliest step here: routes with nothing to count them against skip it.
  const { route: routeLimits, perUser, maxInputTokens: maxInput } = route.spec.limits;
  const needsTokens =
    uses.length > 0 || maxInput !== undefined || routeLimits?.tokensPerMinute !== undefined || routeLimits?.tokensPerDay !== undefined || perUser?.tokensPerMinute !== undefined || perUser?.tokensPerDay !== undefined;
  const inputEstimate = needsTokens ? estimateInputTokens(endpoint as TokenEndpoint, body, model) : 0;
  if (maxInput !== undefined && inputEstimate > maxInput) {
    throw new EnvelopeError('input_too_long', `The input is about ${inputEstimate} tokens; route '${route.id}' allows ${maxInput} (limits.maxInputTokens).`);
  }
  const candidates = [model, ...route.spec.model.fallbacks.filter((m) => m !== model)];
  const price = worstPrice(route, candidates);
  const cap = outputCap(endpoint as TokenEndpoint, body);
  // Without a cap each of the `n` choices may run to the model's maximum.
  const choices = endpoint === 'chat.completions' && typeof body.n === 'number' && body.n > 1 ? Math.floor(body.n) : 1;
  const outputReserve = cap ?? (price?.maxOutputTokens ?? DEFAULT_MAX_OUTPUT) * choices;
  // An answer that breaks the output contract may cost a second call (repair, or the fallback
  // model): the reservation covers it, with the first answer and the errors added to its input.
  const secondCall = input.mayCallTwice ? inputEstimate + outputReserve + REPAIR_OVERHEAD_TOKENS : 0;
  const inputReserve = inputEstimate + secondCall;
  const outputTotal = outputReserve * (input.mayCallTwice ? 2 : 1);
  const tokens = inputReserve + outputTotal;

  // Windows: all of the route's and the user's, in one atomic decision.
  const specs: WindowSpec[] = [];
  const tokenWindowKeys: string[] = [];
  for (const [perUser, limits] of [
    [false, route.spec.limits.route],
    [true, route.spec.limits.perUser],
  ] as const) {
    if (!limits) continue;
    const keys = keysOf(route, perUser ? input.user : undefined);
    for (let i = 0; i < WINDOWS.length; i++) {
      const w = WINDOWS[i] as (typeof WINDOWS)[number];
      const limit = limits[w.name];
      if (limit === undefined) continue;
      const key = keys[i] as string;
      const cost = w.tokens ? tokens : 1;
      if (cost > limit) {
        throw new EnvelopeError('rate_limited', `This call may use up to ${tokens} tokens (input ~${inputEstimate} + output cap ${outputReserve}), more than ${perUser ? "the per-user" : "the route's"} ${w.name} (${limit}) allows at once: lower max_output_tokens or the input.`, { headers: { 'x-should-retry': 'false' } });
      }
      specs.push({ key, windowMs: w.windowMs, bucketMs: w.bucketMs, limit, cost });
      if (w.tokens) tokenWindowKeys.push(key);
    }
  }
  let windows: WindowState[] = [];
  let windowTicket: WindowTicket | undefined;
  if (specs.length > 0) {
    const result = await store.admit(specs, now);
    windows = result.windows;
    if (!result.admitted) {
      const spec = specs.find((s) => s.key === result.key);
      const which = WINDOWS.find((w) => result.key.endsWith(`:${w.suffix}`))?.name ?? 'limit';
      const whose = result.key.includes(':u:') ? 'the per-user' : `route '${route.id}'s`;
      const seconds = Math.max(1, Math.ceil(result.retryAfterMs / 1000));
      throw new EnvelopeError('rate_limited', `Over ${whose} ${which} (${spec?.limit ?? '?'}); retry after ${formatGoDuration(result.retryAfterMs)}.`, {
        headers: { 'retry-after': String(seconds), 'retry-after-ms': String(Math.ceil(result.retryAfterMs)), ...rateLimitHeaders(windows) },
      });
    }
    windowTicket = result.ticket;
  }

  // Budgets: reserve the worst case on every one that covers the route; block ones may refuse.
  let budgetTicket: BudgetTicket | undefined;
  let reservedNano = 0;
  if (uses.length > 0) {
    const enforced = uses.some((u) => u.budget.onExhausted === 'block');
    if (!price && enforced) {
      await release(store, windowTicket, tokenWindowKeys, tokens, now);
      throw new EnvelopeError('model_not_allowed', `No price is known for '${candidates.find((m) => !priceFor(m, route.spec.prices))}', so the route's budget cannot be enforced: add it to the route's spec.prices.`);
    }
    reservedNano = price ? worstCaseNano(inputReserve, outputTotal, price) : 0;
    const specsB: BudgetSpec[] = [];
    for (const u of uses) {
      const enforce = u.budget.onExhausted === 'block';
      specsB.push({ key: u.key, limit: Math.round(u.budget.limitUSD * NANO_PER_USD), enforce, expiresAt: u.period.end });
      if (u.userKey) specsB.push({ key: u.userKey, limit: Math.round((u.budget.perUserLimitUSD as number) * NANO_PER_USD), enforce, expiresAt: u.period.end });
    }
    const result = await store.reserve(specsB, reservedNano, route.spec.timeouts.requestSeconds * 1000 + HOLD_EXTRA_MS, now);
    if (!result.ok) {
      await release(store, windowTicket, tokenWindowKeys, tokens, now);
      const use = uses.find((u) => u.key === result.key || u.userKey === result.key) as BudgetUse;
      const name = `${use.budget.namespace}/${use.budget.name}`;
      const subject = result.key === use.userKey ? `Budget '${name}' for this user` : `Budget '${name}'`;
      throw new EnvelopeError(
        'budget_exhausted',
        `${subject} is exhausted for ${use.period.key}: ${usd(result.spent)} spent and ${usd(result.reserved)} reserved of ${usd(result.limit)}; this call could cost up to ${usd(reservedNano)}. It resets at ${new Date(use.period.end).toISOString()}.`,
      );
    }
    budgetTicket = result.ticket;
  }

  return {
    model,
    ...(degradedBy ? { degradedBy } : {}),
    inputEstimate,
    outputReserve,
    reservedTokens: tokens,
    windows,
    ...(windowTicket ? { windowTicket } : {}),
    tokenWindowKeys,
    budgets: uses,
    ...(budgetTicket ? { budgetTicket } : {}),
    reservedNano,
  };
}

function exhausted(level: BudgetLevel | undefined, limitUSD: number | undefined): boolean {
  if (!level || limitUSD === undefined) return false;
  return level.spent + level.reserved >= limitUSD * NANO_PER_USD;
}

async function release(store: StateStore, ticket: WindowTicket | undefined, keys: string[], tokens: number, now: number): Promise<void> {
  if (!ticket) return;
  for (const key of keys) await store.adjust(ticket, key, -tokens, now);
}

export interface Settlement {
  costNano: number;
  levels: Map<string, BudgetLevel>;
}

/** One call the upstream billed: a request may have made two (a repair, a fallback after an invalid answer). */
export interface Billed {
  usage: Usage;
  model: string;
}

/**
 * After the call: token windows get the real total instead of the estimate, budgets get the real
 * cost instead of the reservation. Nothing billed means nothing was spent upstream.
 */
export async function settle(store: StateStore, route: RuntimeRoute, a: Admission, billed: Billed[], now: number): Promise<Settlement> {
  let real = 0;
  let cost = 0;
  for (const b of billed) {
    real += b.usage.input + b.usage.output;
    const price = priceFor(b.model, route.spec.prices);
    if (price) cost += costNano(b.usage, price);
  }
  if (a.windowTicket) {
    const delta = real - a.reservedTokens;
    if (delta !== 0) for (const key of a.tokenWindowKeys) await store.adjust(a.windowTicket, key, delta, now);
  }
  const levels = a.budgetTicket ? await store.settle(a.budgetTicket, cost, now) : new Map<string, BudgetLevel>();
  return { costNano: cost, levels };
}

/** OpenAI's x-ratelimit-* headers for the tightest request window and the tightest token window. */
export function rateLimitHeaders(windows: WindowState[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [kind, suffixes] of [
    ['requests', [':rpm', ':rpd']],
    ['tokens', [':tpm', ':tpd']],
  ] as const) {
    let tightest: WindowState | undefined;
    for (const w of windows) {
      if (!suffixes.some((s) => w.key.endsWith(s))) continue;
      if (!tightest || w.remaining < tightest.remaining) tightest = w;
    }
    if (!tightest) continue;
    out[`x-ratelimit-limit-${kind}`] = String(tightest.limit);
    out[`x-ratelimit-remaining-${kind}`] = String(Math.max(0, tightest.remaining));
    out[`x-ratelimit-reset-${kind}`] = formatGoDuration(tightest.resetMs);
  }
  return out;
}
