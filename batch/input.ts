// The local check of a Batch API input file, before anything is uploaded: the server would only
// report these problems after the upload, as a failed batch, and the whole file would be lost.

/** OpenAI's published limits for one batch input file. */
export const MAX_REQUESTS = 50_000;
export const MAX_BYTES = 200 * 1024 * 1024;

export interface CheckedInput {
  /** The custom_ids in file order: the order results are written in. */
  customIds: string[];
  /** The url every line names: the batch's endpoint. */
  endpoint: string | undefined;
  /** One line per problem, each naming the file and line. */
  problems: string[];
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Checks JSONL text as the Batch API would: one JSON object per line with a unique non-empty
 * `custom_id`, `method` POST, one `url` for every line (the endpoint, when given) and a `body`
 * object. Blank lines are skipped, as the API does.
 */
export function checkBatchInput(text: string, file: string, endpoint?: string): CheckedInput {
  const problems: string[] = [];
  const customIds: string[] = [];
  const firstSeen = new Map<string, number>();
  let url: { value: string; line: number } | undefined = endpoint === undefined ? undefined : { value: endpoint, line: 0 };
  const at = (line: number, msg: string) => problems.push(`${file}:${line}: ${msg}`);

  if (Buffer.byteLength(text) > MAX_BYTES) problems.push(`${file}: larger than the Batch API's ${MAX_BYTES / 1024 / 1024} MB limit`);
  const rows = text.split('\n');
  rows.forEach((raw, i) => {
    const line = i + 1;
    if (raw.trim() === '') return;
    let entry: unknown;
    try {
      entry = JSON.parse(raw);
    } catch (err) {
      return at(line, `not valid JSON (${(err as Error).message})`);
    }
    if (!isObject(entry)) return at(line, 'must be a JSON object with custom_id, method, url and body');
    const id = entry.custom_id;
    if (typeof id !== 'string' || id === '') {
      at(line, id === undefined ? 'custom_id is missing' : 'custom_id must be a non-empty string');
    } else if (firstSeen.has(id)) {
      at(line, `custom_id '${id}' repeats line ${firstSeen.get(id)}`);
    } else {
      firstSeen.set(id, line);
      customIds.push(id);
    }
    if (entry.method !== 'POST') at(line, `method must be "POST", got ${JSON.stringify(entry.method) ?? 'nothing'}`);
    if (typeof entry.url !== 'string' || entry.url === '') {
      at(line, 'url is missing (the endpoint path, e.g. "/v1/chat/completions")');
    } else if (url === undefined) {
      url = { value: entry.url, line };
    } else if (entry.url !== url.value) {
      at(line, `url '${entry.url}' differs from ${url.line === 0 ? `--endpoint '${url.value}'` : `'${url.value}' on line ${url.line}`}: a batch has one endpoint`);
    }
    if (!isObject(entry.body)) at(line, 'body must be a JSON object (the request body)');
    else if (entry.body.stream === true) at(line, 'body.stream: streaming is not supported in a batch');
  });
  if (firstSeen.size === 0 && problems.length === 0) problems.push(`${file}: no requests (an empty file)`);
  if (firstSeen.size > MAX_REQUESTS) problems.push(`${file}: ${firstSeen.size} requests, more than the Batch API's ${MAX_REQUESTS} per batch`);
  return { customIds, endpoint: url?.value, problems };
}
