// How a batch is shown: the progress bar on a terminal, plain lines in logs, and `status`.

export interface BatchObject {
  id: string;
  status: string;
  endpoint?: string;
  model?: string | null;
  input_file_id?: string;
  output_file_id?: string | null;
  error_file_id?: string | null;
  request_counts?: { total: number; completed: number; failed: number } | null;
  usage?: {
    input_tokens?: number;
    input_tokens_details?: { cached_tokens?: number };
    output_tokens?: number;
    output_tokens_details?: { reasoning_tokens?: number };
    total_tokens?: number;
  } | null;
  errors?: { data?: { code?: string; message?: string; line?: number | null; param?: string | null }[] } | null;
  metadata?: Record<string, string> | null;
  [timestamp: `${string}_at`]: number | null | undefined;
}

/** Statuses after which nothing changes any more. */
export const FINAL = new Set(['completed', 'failed', 'expired', 'cancelled']);

function counts(b: BatchObject) {
  const c = b.request_counts ?? { total: 0, completed: 0, failed: 0 };
  return { ...c, done: c.completed + c.failed };
}

function clock(ms: number): string {
  const s = Math.floor(ms / 1000);
  const pad = (n: number) => String(n).padStart(2, '0');
  return s >= 3600 ? `${Math.floor(s / 3600)}:${pad(Math.floor(s / 60) % 60)}:${pad(s % 60)}` : `${Math.floor(s / 60)}:${pad(s % 60)}`;
}

/** One terminal line, redrawn in place: `[#####.....]  12/40  30%  in_progress  1 failed  0:42`. */
export function progressBar(b: BatchObject, elapsedMs: number, width = 30): string {
  const c = counts(b);
  const ratio = c.total > 0 ? c.done / c.total : b.status === 'completed' ? 1 : 0;
  const filled = Math.round(ratio * width);
  const failed = c.failed > 0 ? `  ${c.failed} failed` : '';
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(c.done).padStart(String(c.total).length)}/${c.total}  ${String(Math.round(ratio * 100)).padStart(3)}%  ${b.status}${failed}  ${clock(elapsedMs)}`;
}

/** A log-friendly line, printed when something changed (or now and then while nothing does). */
export function progressLine(b: BatchObject, elapsedMs: number): string {
  const c = counts(b);
  return `${b.id} ${b.status} ${c.done}/${c.total} done (${c.completed} completed, ${c.failed} failed) after ${clock(elapsedMs)}`;
}

/** What identifies a visible change of progress. */
export function progressKey(b: BatchObject): string {
  const c = counts(b);
  return `${b.status} ${c.completed} ${c.failed} ${c.total}`;
}

const TIMESTAMPS = ['created_at', 'in_progress_at', 'finalizing_at', 'completed_at', 'failed_at', 'expired_at', 'cancelling_at', 'cancelled_at', 'expires_at'] as const;

/** The `status` command's text: one `name  value` row per known fact. */
export function describeBatch(b: BatchObject): string {
  const rows: [string, string][] = [
    ['batch', b.id],
    ['status', b.status],
  ];
  if (b.endpoint) rows.push(['endpoint', b.endpoint]);
  if (b.model) rows.push(['model', b.model]);
  const c = counts(b);
  rows.push(['requests', `${c.total} total, ${c.completed} completed, ${c.failed} failed`]);
  for (const key of TIMESTAMPS) {
    const t = b[key];
    if (typeof t === 'number') rows.push([key.replace(/_at$/, '').replace('_', ' '), new Date(t * 1000).toISOString()]);
  }
  if (b.input_file_id) rows.push(['input file', b.input_file_id]);
  if (b.output_file_id) rows.push(['output file', b.output_file_id]);
  if (b.error_file_id) rows.push(['error file', b.error_file_id]);
  const u = b.usage;
  if (u && typeof u.total_tokens === 'number') {
    rows.push([
      'usage',
      `${u.input_tokens ?? 0} input (${u.input_tokens_details?.cached_tokens ?? 0} cached), ${u.output_tokens ?? 0} output (${u.output_tokens_details?.reasoning_tokens ?? 0} reasoning), ${u.total_tokens} total tokens`,
    ]);
  }
  for (const [k, v] of Object.entries(b.metadata ?? {})) rows.push([`metadata.${k}`, v]);
  const width = Math.max(...rows.map(([k]) => k.length));
  const text = rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`);
  for (const e of b.errors?.data ?? []) text.push(`error: ${batchErrorText(e)}`);
  return `${text.join('\n')}\n`;
}

/** A validation error of a failed batch, with its input line when the server gave one. */
export function batchErrorText(e: { code?: string; message?: string; line?: number | null }): string {
  return `${e.line != null ? `line ${e.line}: ` : ''}${e.code ?? 'error'}: ${e.message ?? ''}`.trim();
}
