// The passes: detectors run in order, each hiding what it claims from the later ones.
import { type RedactionKind, type Findings, type Redactor, placeholder, mergeFindings } from './kinds.ts';
import type { Spans } from './chars.ts';
import { findPrivateKeys } from './private-key.ts';
import { findJwts } from './jwt.ts';
import { findSecrets } from './secret.ts';
import { findEmails } from './email.ts';
import { findIbans } from './iban.ts';
import { findCards } from './card.ts';
import { findPhones } from './phone.ts';

/** Most specific first: the order in which detectors claim text. */
const ORDER: readonly RedactionKind[] = ['private_key', 'jwt', 'secret', 'email', 'iban', 'credit_card', 'phone'];

type Detector = (t: string, out: Spans, redacting: boolean) => void;

const DETECTORS: Readonly<Record<RedactionKind, Detector>> = {
  private_key: findPrivateKeys,
  jwt: findJwts,
  // The generic rules (assignments, Bearer) are guesses: they run only when secrets are redacted,
  // never as a shield that could hide an address in `password=` from the email rule.
  secret: findSecrets,
  email: findEmails,
  iban: findIbans,
  credit_card: findCards,
  phone: findPhones,
};

function mask(t: string, spans: Spans): string {
  let out = '';
  let at = 0;
  for (let k = 0; k < spans.length; k += 2) {
    const s = spans[k]!;
    const e = spans[k + 1]!;
    out += t.slice(at, s) + '\0'.repeat(e - s);
    at = e;
  }
  return out + t.slice(at);
}

/** One pass of every detector; undefined when nothing the redactor wants was found. */
function onePass(text: string, wanted: ReadonlySet<RedactionKind>): { text: string; findings: Findings } | undefined {
  let work = text;
  const claimed: Array<{ s: number; e: number; kind: RedactionKind }> = [];
  let any = false;
  for (const kind of ORDER) {
    const found: Spans = [];
    const redacting = wanted.has(kind);
    DETECTORS[kind](work, found, redacting);
    if (found.length === 0) continue;
    for (let k = 0; k < found.length; k += 2) claimed.push({ s: found[k]!, e: found[k + 1]!, kind });
    if (redacting) any = true;
    work = mask(work, found);
  }
  if (!any) return undefined;
  claimed.sort((a, b) => a.s - b.s);
  const findings: Findings = {};
  let out = '';
  let at = 0;
  for (const { s, e, kind } of claimed) {
    if (!wanted.has(kind)) continue;
    out += text.slice(at, s) + placeholder(kind);
    at = e;
    findings[kind] = (findings[kind] ?? 0) + 1;
  }
  return { text: out + text.slice(at), findings };
}

// A redaction can free a neighbour that a boundary rule had refused (`a@b.co+1 555 123 4567`
// once the address is a placeholder), so passes repeat until one finds nothing: the output is
// then a fixed point and redacting it again changes nothing. Texts with no finding take one pass.
const MAX_PASSES = 4;

function redactWith(wanted: ReadonlySet<RedactionKind>, text: string): { text: string; findings: Findings } {
  let findings: Findings = {};
  if (wanted.size === 0 || text.length === 0) return { text, findings };
  for (let pass = 0; pass < MAX_PASSES; pass++) {
    const r = onePass(text, wanted);
    if (!r) break;
    text = r.text;
    findings = mergeFindings(findings, r.findings);
  }
  return { text, findings };
}

const redactors = new Map<string, Redactor>();

/** A redactor for these kinds; one instance per distinct set. */
export function createRedactor(kinds: readonly RedactionKind[]): Redactor {
  for (const k of kinds) if (!ORDER.includes(k)) throw new TypeError(`unknown redaction kind '${String(k)}'`);
  const canonical = ORDER.filter((k) => kinds.includes(k));
  const key = canonical.join(',');
  let r = redactors.get(key);
  if (!r) {
    const wanted: ReadonlySet<RedactionKind> = new Set(canonical);
    r = Object.freeze({ kinds: Object.freeze(canonical), redact: (text: string) => redactWith(wanted, text) });
    redactors.set(key, r);
  }
  return r;
}
