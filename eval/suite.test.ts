import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { endpointOf, fillTemplate, inputText, loadSuite, requestBody, SuiteError, toEvalsJsonl } from './suite.ts';

const dir = mkdtempSync(join(tmpdir(), 'ai-envelope-suite-'));
function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

async function problems(path: string): Promise<string[]> {
  try {
    await loadSuite(path);
  } catch (e) {
    if (e instanceof SuiteError) return e.problems;
    throw e;
  }
  throw new Error('the suite loaded');
}

const GOOD = `
name: triage
route: support
thresholds: {passRate: 0.9, tags: {adversarial: 1}}
regression: {margin: 0.05}
defaults:
  params: {model: gpt-4.1-mini, tools: [{type: function, name: lookup_order, parameters: {type: object}}]}
  tags: [triage]
cases:
  - id: a
    tags: [common]
    input: I was charged twice
    instructions: Be brief.
    graders: [{type: label, labels: [billing, other], expected: billing}]
  - id: b
    messages: [{role: user, content: where is my parcel}]
    params: {tools: null, max_completion_tokens: 50}
    graders: [{type: contains, value: parcel}]
`;

describe('suites', () => {
  it('load from YAML with defaults merged (null removes one)', async () => {
    const s = await loadSuite(file('good.yaml', GOOD));
    expect(s.name).toBe('triage');
    expect(s.thresholds).toEqual({ passRate: 0.9, tags: { adversarial: 1 }, graders: {} });
    expect(s.regression).toEqual({ margin: 0.05 });
    const [a, b] = s.cases;
    expect(a!.tags).toEqual(['triage', 'common']);
    expect(endpointOf(a!)).toBe('responses');
    expect(requestBody(a!)).toEqual({ model: 'gpt-4.1-mini', tools: [{ type: 'function', name: 'lookup_order', parameters: { type: 'object' } }], input: 'I was charged twice', instructions: 'Be brief.' });
    expect(endpointOf(b!)).toBe('chat');
    expect(requestBody(b!)).toEqual({ model: 'gpt-4.1-mini', max_completion_tokens: 50, messages: [{ role: 'user', content: 'where is my parcel' }] });
    expect(inputText(b!)).toBe('where is my parcel');
  });

  it('name the file, the case and the field in every problem', async () => {
    const path = file(
      'bad.yaml',
      `name: triage
cases:
  - id: a
    input: hi
    graders: [{type: regex, pattern: "(unclosed"}, {type: label, labels: [x], expected: y}]
  - id: b
    input: hi
    graders: [{type: telepathy}]
  - id: e
    input: hi
    messages: [{role: user, content: hi}]
    graders: [{type: exact, value: hi}]
  - id: c
    input: hi
    colour: red
    graders: []
  - id: d
    input: hi
    graders: [{type: json_schema, schema: {type: nope}}, {type: rubric, rubric: kind}]
`,
    );
    const p = await problems(path);
    expect(p).toEqual([
      expect.stringMatching(new RegExp(`^${path}: case "a": graders\\[0\\]\\.pattern: Invalid regular expression`)),
      `${path}: case "a": graders[1].expected: must be one of labels`,
      `${path}: case "b": graders[0].type: unknown grader type: expected one of exact, contains, not_contains, regex, json_schema, fields, tool_call, label, number, rubric, error`,
      `${path}: case "e": input: give exactly one of input (Responses) or messages (Chat)`,
      `${path}: case "c": graders: needs at least one grader`,
      `${path}: case "c": (case): Unrecognized key: "colour"`,
      expect.stringMatching(new RegExp(`^${path}: case "d": graders\\[0\\]\\.schema: not a usable JSON Schema`)),
    ]);
  });

  it('check the suite as a whole: unique ids, a judge for rubrics, YAML syntax', async () => {
    const path = file('dupes.yaml', 'name: s\ncases:\n  - {id: a, input: x, graders: [{type: rubric, rubric: r}]}\n  - {id: a, input: y, graders: [{type: exact, value: y}]}\n');
    expect(await problems(path)).toEqual([
      `${path}: case "a": graders[0]: a rubric needs the suite's judge (judge.prompt, and judge.route unless the suite's route judges)`,
      `${path}: case "a": id: used by more than one case`,
    ]);
    const broken = file('broken.yaml', 'name: s\ncases: [\n');
    expect(await problems(broken)).toEqual([`${broken}: line 3, column 1: Flow sequence in block collection must be sufficiently indented and end with a ]`]);
    const top = file('top.yaml', 'name: s\nthresholds: {passRate: 2}\ncases: []\n');
    expect(await problems(top)).toEqual([`${top}: thresholds.passRate: Too big: expected number to be <=1`]);
  });

  it('read JSONL: OpenAI Evals items or bare cases, located by line', async () => {
    const path = file(
      'cases.jsonl',
      [
        JSON.stringify({ item: { id: 'x', input: 'hello', tags: ['common'], graders: [{ type: 'contains', value: 'hello' }] }, sample: { output_text: 'ignored' } }),
        '',
        JSON.stringify({ id: 'y', messages: [{ role: 'user', content: 'hi' }], graders: [{ type: 'exact', value: 'hi' }] }),
      ].join('\n'),
    );
    const s = await loadSuite(path);
    expect(s.name).toBe('cases');
    expect(s.cases.map((c) => c.id)).toEqual(['x', 'y']);
    const bad = file('bad.jsonl', `${JSON.stringify({ item: { id: 'z', input: 'x', graders: [{ type: 'number' }] } })}\nnot json\n`);
    expect(await problems(bad)).toEqual([`${bad}: line 1 (case "z"): graders[0].expected: Invalid input: expected number, received undefined`, expect.stringMatching(new RegExp(`^${bad}: line 2: not JSON`))]);
  });

  it('export to OpenAI Evals items and read them back unchanged (casesFrom)', async () => {
    const s = await loadSuite(file('round.yaml', GOOD));
    const jsonl = toEvalsJsonl(s);
    const lines = jsonl.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => Object.keys(l))).toEqual([['item'], ['item']]);
    file('items.jsonl', jsonl);
    const back = await loadSuite(file('from.yaml', 'name: again\ncasesFrom: items.jsonl\n'));
    // Each item carries its route: the suite's, where the case named none.
    expect(back.cases).toEqual(s.cases.map((c) => ({ ...c, route: 'support' })));
  });

  it('import foreign OpenAI Evals items through a case template', async () => {
    file(
      'tickets.jsonl',
      [
        { item: { ticket: 'I was charged twice', label: 'billing', amount: 12.5 } },
        { item: { ticket: 'Where is my parcel?', label: 'shipping', amount: 0 }, sample: { output_text: 'shipping' } },
      ]
        .map((l) => JSON.stringify(l))
        .join('\n'),
    );
    const s = await loadSuite(
      file(
        'imported.yaml',
        `name: imported
route: support
casesFrom:
  file: tickets.jsonl
  case:
    tags: [imported]
    input: "Ticket: {{item.ticket}}"
    graders:
      - {type: label, labels: [billing, shipping], expected: "{{ item.label }}"}
      - {type: number, expected: "{{item.amount}}", tolerance: 0.01}
`,
      ),
    );
    expect(s.cases.map((c) => [c.id, c.input, c.tags])).toEqual([
      ['tickets-1', 'Ticket: I was charged twice', ['imported']],
      ['tickets-2', 'Ticket: Where is my parcel?', ['imported']],
    ]);
    expect(s.cases[0]!.graders).toEqual([
      { type: 'label', labels: ['billing', 'shipping'], expected: 'billing', caseSensitive: false },
      { type: 'number', expected: 12.5, tolerance: 0.01, relative: false },
    ]);
    file('short.jsonl', JSON.stringify({ item: { ticket: 'hi' } }));
    const path = file('short.yaml', 'name: s\ncasesFrom: {file: short.jsonl, case: {input: "{{item.ticket}}", graders: [{type: exact, value: "{{item.answer}}"}]}}\n');
    expect(await problems(path)).toEqual([`${join(dir, 'short.jsonl')}: line 1: item.answer: not in the item (the case template of casesFrom uses it)`]);
    expect(fillTemplate({ a: ['{{item.x[1]}}', 'n={{item.y}}'] }, { x: [1, 2], y: { z: 1 } }, [])).toEqual({ a: [2, 'n={"z":1}'] });
  });
});
