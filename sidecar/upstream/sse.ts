// A tap on an upstream server-sent-event stream. Events are forwarded whole, as soon as their
// closing blank line arrives, so nothing is buffered beyond one event. Only the few events that
// matter to accounting are parsed; the rest are scanned with substring checks, since this runs
// for every chunk of every stream.
import { errorBody, type ErrorCode } from '../errors.ts';
import { normaliseUsage, type Usage } from './usage.ts';

export type StreamKind = 'chat' | 'responses';

const TERMINAL_RESPONSE_EVENTS = new Set(['response.completed', 'response.incomplete', 'response.failed']);
const CHAT_CONTENT = /"(?:content|refusal)":"[^"]|"tool_calls":\[/;
const USAGE_NULL = /,\s*"usage"\s*:\s*null/g;

export class SseTap {
  readonly kind: StreamKind;
  /** The app did not ask for the usage chunk: the sidecar did, and removes it again. */
  readonly stripUsage: boolean;
  usage: Usage | undefined;
  responseModel: string | undefined;
  firstTokenAt: number | undefined;
  /** Content deltas seen: OpenAI streams about one token per delta, so this estimates the output of a stream cut short. */
  deltas = 0;
  /** The upstream finished the stream properly ([DONE] or a terminal Responses event). */
  completed = false;
  upstreamError: { code: string | null; message: string } | undefined;
  /** Sees every event's data (for output checks and content logging); set only when needed, since it costs a parse per event. */
  observe: ((data: string) => void) | undefined;
  /** Keep back the terminal event ([DONE], response.completed) until the caller has checked the answer. */
  holdTerminal = false;
  /** The terminal event kept back, to release with `releaseTerminal()` or replace with an error. */
  heldTerminal: string | undefined;
  private pending = '';
  private lastSequence = -1;
  private readonly decoder = new TextDecoder();

  constructor(kind: StreamKind, stripUsage: boolean) {
    this.kind = kind;
    this.stripUsage = stripUsage;
  }

  /** Feeds upstream bytes; returns what to send to the app now (possibly ''). */
  push(chunk: Uint8Array): string {
    this.pending += this.decoder.decode(chunk, { stream: true });
    let out = '';
    for (;;) {
      const end = this.boundary();
      if (end === null) break;
      const raw = this.pending.slice(0, end.index + end.length);
      this.pending = this.pending.slice(end.index + end.length);
      out += this.onEvent(raw);
    }
    return out;
  }

  /** What is left when the upstream closes (an unterminated last event is passed on as is). */
  flush(): string {
    const rest = this.pending + this.decoder.decode();
    this.pending = '';
    return rest.trim() === '' ? '' : this.onEvent(`${rest}\n\n`);
  }

  /** An error in the stream's own format, so the SDK reading it raises it. */
  errorEvent(code: ErrorCode, message: string): string {
    const body = errorBody(code, message);
    if (this.kind === 'chat') return `data: ${JSON.stringify(body)}\n\n`;
    const event = { type: 'error', code, message, param: null, sequence_number: this.lastSequence + 1 };
    return `event: error\ndata: ${JSON.stringify(event)}\n\n`;
  }

  private boundary(): { index: number; length: number } | null {
    const lf = this.pending.indexOf('\n\n');
    const crlf = this.pending.indexOf('\r\n\r\n');
    if (lf === -1 && crlf === -1) return null;
    if (crlf !== -1 && (lf === -1 || crlf < lf)) return { index: crlf, length: 4 };
    return { index: lf, length: 2 };
  }

  private onEvent(raw: string): string {
    let event: string | undefined;
    let data = '';
    for (const line of raw.split(/\r?\n/)) {
      if (line.startsWith('data:')) data += (data ? '\n' : '') + line.slice(line[5] === ' ' ? 6 : 5);
      else if (line.startsWith('event:')) event = line.slice(6).trim();
    }
    return this.kind === 'chat' ? this.onChat(raw, data) : this.onResponses(raw, event, data);
  }

  private onChat(raw: string, data: string): string {
    if (data === '[DONE]') {
      this.completed = true;
      return this.hold(raw);
    }
    this.observe?.(data);
    if (CHAT_CONTENT.test(data)) {
      this.deltas++;
      this.firstTokenAt ??= performance.now();
    }
    if (data.includes('"error"') && data.startsWith('{"error"')) this.noteError(data);
    if (!data.includes('"usage"')) return raw;
    if (!data.includes('"usage":null') && !data.includes('"usage": null')) {
      const chunk = safeParse(data) as { usage?: unknown; model?: string; choices?: unknown[] } | undefined;
      if (chunk?.usage) {
        this.usage = normaliseUsage(chunk.usage);
        this.responseModel = chunk.model ?? this.responseModel;
        if (this.stripUsage) {
          if (!chunk.choices || chunk.choices.length === 0) return '';
          delete chunk.usage;
          return `data: ${JSON.stringify(chunk)}\n\n`;
        }
      }
      return raw;
    }
    return this.stripUsage ? raw.replace(USAGE_NULL, '') : raw;
  }

  private onResponses(raw: string, event: string | undefined, data: string): string {
    const seq = data.lastIndexOf('"sequence_number":');
    if (seq !== -1) {
      const n = Number.parseInt(data.slice(seq + 18), 10);
      if (Number.isFinite(n)) this.lastSequence = n;
    }
    if (event?.endsWith('.delta')) {
      this.deltas++;
      this.firstTokenAt ??= performance.now();
    }
    this.observe?.(data);
    if (event && TERMINAL_RESPONSE_EVENTS.has(event)) {
      this.completed = true;
      const parsed = safeParse(data) as { response?: { usage?: unknown; model?: string } } | undefined;
      if (parsed?.response?.usage) this.usage = normaliseUsage(parsed.response.usage);
      this.responseModel = parsed?.response?.model ?? this.responseModel;
      return this.hold(raw);
    }
    if (event === 'error') this.noteError(data);
    return raw;
  }

  private hold(raw: string): string {
    if (!this.holdTerminal) return raw;
    this.heldTerminal = (this.heldTerminal ?? '') + raw;
    return '';
  }

  private noteError(data: string): void {
    const parsed = safeParse(data) as { error?: { code?: string; message?: string }; code?: string; message?: string } | undefined;
    const err = parsed?.error ?? parsed;
    this.upstreamError = { code: err?.code ?? null, message: err?.message ?? 'error event' };
  }
}

function safeParse(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
