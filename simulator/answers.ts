// Scripted answers: what the simulated model says to a given input, so an eval can grade real
// differences (a prompt version, a model) instead of the one canned reply. A rule matches on the
// last user message, the prompt (instructions, system and developer messages) and the model; the
// first rule that matches decides the content. Everything else (tokens, caps, streaming, the
// envelope's checks) stays as for any other reply: a scripted answer is only the model's words.
import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';
import { textOf } from './generate.ts';

export interface ScriptedAnswer {
  /** The last user message contains this text. */
  whenInput?: string;
  /** The instructions, system or developer messages contain this text. */
  whenPrompt?: string;
  /** The request's model is exactly this one. */
  model?: string;
  /** The reply's text, as the model writes it (for structured output: the JSON text). */
  text?: string;
  /** A reply that is this value as JSON text. */
  json?: unknown;
  /** A call of this function, when the request offers it (else the rule does not match). */
  toolCall?: { name: string; arguments: unknown };
}

/** What the handlers need to know about a request to pick a rule. */
export interface AnswerQuery {
  model: string;
  lastUserText: string | undefined;
  promptText: string;
  toolNames: string[];
  toolChoice: unknown;
}

export type Decided = { kind: 'text'; text: string } | { kind: 'tool'; name: string; arguments: string };

export function decideAnswer(rules: readonly ScriptedAnswer[], q: AnswerQuery): Decided | undefined {
  for (const r of rules) {
    if (r.model !== undefined && r.model !== q.model) continue;
    if (r.whenInput !== undefined && !(q.lastUserText ?? '').includes(r.whenInput)) continue;
    if (r.whenPrompt !== undefined && !q.promptText.includes(r.whenPrompt)) continue;
    if (r.toolCall) {
      // A model cannot call a tool it was not offered, nor one tool_choice rules out.
      if (!q.toolNames.includes(r.toolCall.name) || q.toolChoice === 'none') continue;
      const args = typeof r.toolCall.arguments === 'string' ? r.toolCall.arguments : JSON.stringify(r.toolCall.arguments ?? {});
      return { kind: 'tool', name: r.toolCall.name, arguments: args };
    }
    return { kind: 'text', text: r.text ?? JSON.stringify(r.json) };
  }
  return undefined;
}

/** The prompt a request carries: instructions plus every system and developer message. */
export function promptTextOf(instructions: unknown, messages: ReadonlyArray<{ role?: unknown; content?: unknown }>): string {
  const parts = typeof instructions === 'string' ? [instructions] : [];
  for (const m of messages) if (m.role === 'system' || m.role === 'developer') parts.push(textOf(m.content));
  return parts.join('\n');
}

/** Validates rules from an untrusted source (the control API, a file) and returns them. */
export function checkAnswers(v: unknown): ScriptedAnswer[] {
  const list = Array.isArray(v) ? v : [v];
  return list.map((r, i) => {
    const where = `answer ${i + 1}`;
    if (typeof r !== 'object' || r === null || Array.isArray(r)) throw new Error(`${where} must be a JSON object`);
    const a = r as Record<string, unknown>;
    const known = new Set(['whenInput', 'whenPrompt', 'model', 'text', 'json', 'toolCall']);
    for (const k of Object.keys(a)) if (!known.has(k)) throw new Error(`${where}: unknown field '${k}'`);
    for (const k of ['whenInput', 'whenPrompt', 'model', 'text']) {
      if (a[k] !== undefined && typeof a[k] !== 'string') throw new Error(`${where}: '${k}' must be a string`);
    }
    const replies = ['text', 'json', 'toolCall'].filter((k) => a[k] !== undefined);
    if (replies.length !== 1) throw new Error(`${where}: needs exactly one of 'text', 'json' or 'toolCall'`);
    if (a.toolCall !== undefined) {
      const t = a.toolCall as Record<string, unknown>;
      if (typeof t !== 'object' || t === null || typeof t.name !== 'string') throw new Error(`${where}: 'toolCall' needs a string 'name'`);
    }
    return a as ScriptedAnswer;
  });
}

/** Reads rules from a YAML or JSON file: a list, or an object with an `answers` list. */
export async function loadAnswers(path: string): Promise<ScriptedAnswer[]> {
  const doc: unknown = parse(await readFile(path, 'utf8'));
  const list = typeof doc === 'object' && doc !== null && !Array.isArray(doc) && 'answers' in doc ? (doc as { answers: unknown }).answers : doc;
  try {
    return checkAnswers(list ?? []);
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`);
  }
}
