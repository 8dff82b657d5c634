// Output and error files of a batch merged into one result per request, in input order.

export interface Failure {
  customId: string;
  reason: string;
}

export interface Merged {
  /** The server's lines as sent, one per request: input order when known, else output then error file. */
  lines: string[];
  /** The failed lines alone, in the same order. */
  errorLines: string[];
  succeeded: number;
  failed: Failure[];
  /** Input custom_ids with no line in either file. */
  missing: string[];
}

interface ResultLine {
  custom_id?: unknown;
  response?: { status_code?: unknown; body?: unknown } | null;
  error?: { code?: unknown; message?: unknown } | null;
}

/** Parses one downloaded JSONL file; a broken line is the server's fault and named as such. */
export function parseResultFile(text: string, what: string): { raw: string; parsed: ResultLine }[] {
  const out: { raw: string; parsed: ResultLine }[] = [];
  text.split('\n').forEach((raw, i) => {
    if (raw.trim() === '') return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch (err) {
      throw new Error(`${what}, line ${i + 1}: not valid JSON (${(err as Error).message})`);
    }
    if (typeof parsed !== 'object' || parsed === null || typeof (parsed as ResultLine).custom_id !== 'string') {
      throw new Error(`${what}, line ${i + 1}: no custom_id`);
    }
    out.push({ raw, parsed: parsed as ResultLine });
  });
  return out;
}

/** Why a result line failed, or undefined when it succeeded (a 2xx response and no error). */
export function failureOf(line: ResultLine): string | undefined {
  if (line.error) return `${String(line.error.code ?? 'error')}: ${String(line.error.message ?? '')}`.trim();
  const status = line.response?.status_code;
  if (typeof status === 'number' && status >= 200 && status < 300) return undefined;
  const body = line.response?.body as { error?: { code?: unknown; type?: unknown; message?: unknown } } | undefined;
  const e = body?.error;
  const label = e ? String(e.code ?? e.type ?? 'error') : 'no error detail';
  return `${typeof status === 'number' ? status : 'no status'} ${label}${e?.message ? `: ${String(e.message)}` : ''}`;
}

export function mergeResults(output: string, errors: string, order?: string[]): Merged {
  const all = [...parseResultFile(output, 'output file'), ...parseResultFile(errors, 'error file')];
  const byId = new Map(all.map((r) => [r.parsed.custom_id as string, r]));
  const known = new Set(order);
  const ids = [...(order ?? []), ...all.map((r) => r.parsed.custom_id as string).filter((id) => !known.has(id))];
  const merged: Merged = { lines: [], errorLines: [], succeeded: 0, failed: [], missing: [] };
  for (const id of new Set(ids)) {
    const r = byId.get(id);
    if (!r) {
      merged.missing.push(id);
      continue;
    }
    merged.lines.push(r.raw);
    const reason = failureOf(r.parsed);
    if (reason === undefined) merged.succeeded++;
    else {
      merged.failed.push({ customId: id, reason });
      merged.errorLines.push(r.raw);
    }
  }
  return merged;
}
