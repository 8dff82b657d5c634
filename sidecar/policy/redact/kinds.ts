// The kinds of data the redactor finds, their placeholders, and the counts it reports.

export type RedactionKind = 'email' | 'phone' | 'credit_card' | 'iban' | 'secret' | 'jwt' | 'private_key';
/** How many of each kind were found: counts only, never values. */
export type Findings = Partial<Record<RedactionKind, number>>;

export interface Redactor {
  readonly kinds: readonly RedactionKind[];
  redact(text: string): { text: string; findings: Findings };
}

export function placeholder(kind: RedactionKind): string {
  return `[${kind.toUpperCase()}]`;
}

/** Any kind's placeholder, as left in a text by an earlier redaction. */
export const PLACEHOLDER = /\[(?:EMAIL|PHONE|CREDIT_CARD|IBAN|SECRET|JWT|PRIVATE_KEY)\]/;

export function mergeFindings(a: Findings, b: Findings): Findings {
  const out: Findings = { ...a };
  for (const k of Object.keys(b) as RedactionKind[]) {
    const n = b[k];
    if (n) out[k] = (out[k] ?? 0) + n;
  }
  return out;
}
