// The report as one self-contained HTML page: inline styles, no scripts, no external assets, every
// value escaped (answers are model output and may hold markup).
import { promptList, type CaseRun, type Rate, type Report, type VersionSummary } from './report.ts';

export function esc(v: unknown): string {
  return String(v).replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;').replaceAll("'", '&#39;');
}

const pct = (r: number) => `${(r * 100).toFixed(1)}%`;
const usd = (n: number) => `$${n < 0.01 ? n.toFixed(6) : n.toFixed(4)}`;

function rateCell(r: Rate | undefined): string {
  if (!r) return '<td class="num">–</td>';
  const cls = r.rate >= 0.999 ? 'good' : r.rate >= 0.8 ? 'warn' : 'bad';
  return `<td class="num"><span class="bar"><span class="fill ${cls}" style="width:${(r.rate * 100).toFixed(0)}%"></span></span> ${pct(r.rate)} <small>(${r.passed}/${r.total})</small></td>`;
}

function badge(status: string): string {
  return `<span class="badge ${esc(status)}">${esc(status)}</span>`;
}

function cardRow(versions: VersionSummary[], label: string, cell: (v: VersionSummary) => string): string {
  return `<tr><th>${esc(label)}</th>${versions.map(cell).join('')}</tr>`;
}

function runCell(run: CaseRun | undefined): string {
  if (!run) return '<td>–</td>';
  const failing = run.graders.filter((g) => g.status !== 'pass');
  const why = failing.map((g) => `<li><b>${esc(g.grader)}</b> ${badge(g.status)} ${esc(g.reason)}</li>`).join('');
  return `<td>${badge(run.status)}${run.cached ? ' <small class="muted">cached</small>' : ''}<div class="answer">${esc(run.answer)}</div>${why ? `<ul>${why}</ul>` : ''}<small class="muted">${esc(run.model ?? '')} · ${run.latencyMs} ms · ${run.inputTokens}/${run.outputTokens} tok · ${usd(run.costUSD)}</small></td>`;
}

export function renderHtml(r: Report): string {
  const versions = [r.baseline, ...(r.candidate ? [r.candidate] : [])];
  const tags = [...new Set(versions.flatMap((v) => Object.keys(v.perTag)))].sort();
  const graders = [...new Set(versions.flatMap((v) => Object.keys(v.perGrader)))].sort();
  const head = `<tr><th></th>${versions.map((v) => `<th>${esc(v.label)}<br><small class="muted">${esc(v.routes)} @${esc(v.configVersion)}</small></th>`).join('')}</tr>`;
  const summary = [
    cardRow(versions, 'prompt versions', (v) => `<td>${esc(promptList(v.prompts))}</td>`),
    cardRow(versions, 'pass rate', (v) => rateCell(v.overall)),
    cardRow(versions, 'grader errors', (v) => `<td class="num">${v.errors}</td>`),
    cardRow(versions, 'latency p50 / p95', (v) => `<td class="num">${v.latencyMs.p50} / ${v.latencyMs.p95} ms</td>`),
    cardRow(versions, 'tokens in / out', (v) => `<td class="num">${v.tokens.input} / ${v.tokens.output}</td>`),
    cardRow(versions, 'cost', (v) => `<td class="num">${usd(v.costUSD)}</td>`),
    cardRow(versions, 'judge cost', (v) => `<td class="num">${usd(v.judgeCostUSD)}</td>`),
    cardRow(versions, 'from cache', (v) => `<td class="num">${v.cached}/${v.overall.total}</td>`),
  ].join('');
  const shortHead = `<tr><th></th>${versions.map((v) => `<th>${esc(v.label)}</th>`).join('')}</tr>`;
  const tagRows = tags.map((t) => cardRow(versions, t, (v) => rateCell(v.perTag[t]))).join('');
  const graderRows = graders.map((g) => cardRow(versions, g, (v) => rateCell(v.perGrader[g]))).join('');
  const caseRows = r.cases
    .map(
      (c) =>
        `<tr class="case ${esc(c.change)}" data-case="${esc(c.id)}"><td><b>${esc(c.id)}</b><br>${c.tags.map((t) => `<span class="tag">${esc(t)}</span>`).join(' ')}</td>${runCell(c.baseline)}${r.candidate ? `${runCell(c.candidate)}<td>${badge(c.change)}</td>` : ''}</tr>`,
    )
    .join('');
  const gateRows = r.gates.map((g) => `<li class="${g.ok ? 'ok' : 'failed'}">${g.ok ? '✔' : '✘'} <b>${esc(g.name)}</b>: ${esc(g.detail)}</li>`).join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Eval ${esc(r.suite)}</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#1d2330;background:#f6f7f9}
h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 8px}
.muted{color:#667085}.verdict{display:inline-block;padding:4px 12px;border-radius:6px;font-weight:600;margin:8px 0}
.verdict.ok{background:#dcfae6;color:#085d3a}.verdict.failed{background:#fee4e2;color:#912018}
table{border-collapse:collapse;background:#fff;box-shadow:0 1px 2px rgba(16,24,40,.08);border-radius:8px;overflow:hidden}
th,td{padding:6px 12px;border-bottom:1px solid #eaecf0;text-align:left;vertical-align:top}th{background:#f9fafb;font-weight:600}
td.num{white-space:nowrap;font-variant-numeric:tabular-nums}
.bar{display:inline-block;width:80px;height:8px;background:#eaecf0;border-radius:4px;vertical-align:middle}
.fill{display:block;height:8px;border-radius:4px}.fill.good{background:#17b26a}.fill.warn{background:#f79009}.fill.bad{background:#f04438}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;background:#eaecf0}
.badge.pass,.badge.fixed{background:#dcfae6;color:#085d3a}.badge.fail,.badge.regressed{background:#fee4e2;color:#912018}
.badge.error{background:#fef0c7;color:#93370d}.badge.changed{background:#e0eaff;color:#1849a9}
.tag{display:inline-block;font-size:11px;padding:0 6px;border:1px solid #d0d5dd;border-radius:8px;color:#475467}
tr.regressed td{background:#fff6f5}.answer{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;white-space:pre-wrap;max-width:420px;margin:4px 0;color:#344054;overflow-wrap:anywhere}
ul{margin:4px 0;padding-left:18px}li.ok{color:#085d3a}li.failed{color:#912018}.gates{list-style:none;padding:0}
.grid{display:flex;gap:24px;flex-wrap:wrap;align-items:flex-start}
</style></head><body>
<h1>Eval: ${esc(r.suite)}</h1>
<div class="muted">${esc(r.file)} · ${esc(r.generatedAt)} · ${r.cases.length} cases${r.judgePrompt ? ` · judge prompt ${esc(r.judgePrompt)}` : ''}</div>
<div class="verdict ${r.ok ? 'ok' : 'failed'}">${r.ok ? 'PASSED' : 'FAILED'}</div>
<h2>Gates</h2><ul class="gates">${gateRows}</ul>
<div class="grid">
<div><h2>Summary</h2><table id="summary">${head}${summary}</table></div>
<div><h2>Pass rate per tag</h2><table id="tags">${shortHead}${tagRows}</table></div>
<div><h2>Pass rate per grader</h2><table id="graders">${shortHead}${graderRows}</table></div>
</div>
<h2>Cases</h2>
<table id="cases"><tr><th>case</th><th>baseline</th>${r.candidate ? '<th>candidate</th><th>change</th>' : ''}</tr>${caseRows}</table>
</body></html>
`;
}
