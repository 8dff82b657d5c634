import { describe, expect, it } from 'vitest';
import { describeBatch, progressBar, progressLine, type BatchObject } from './progress.ts';

const batch = (o: Partial<BatchObject> = {}): BatchObject => ({ id: 'batch_1', status: 'in_progress', request_counts: { total: 40, completed: 11, failed: 1 }, ...o });

describe('progress', () => {
  it('fills the bar with completed and failed requests over the total', () => {
    expect(progressBar(batch(), 42_000, 10)).toBe('[###.......] 12/40   30%  in_progress  1 failed  0:42');
    expect(progressBar(batch({ status: 'validating', request_counts: { total: 0, completed: 0, failed: 0 } }), 3_723_000, 4)).toBe('[....] 0/0    0%  validating  1:02:03');
  });

  it('says the same in a plain line', () => {
    expect(progressLine(batch(), 61_000)).toBe('batch_1 in_progress 12/40 done (11 completed, 1 failed) after 1:01');
  });

  it('describes counts, timestamps, files, usage and validation errors', () => {
    const text = describeBatch(
      batch({
        status: 'failed',
        created_at: 1_700_000_000,
        failed_at: 1_700_000_001,
        in_progress_at: null,
        input_file_id: 'file-in',
        usage: { input_tokens: 10, input_tokens_details: { cached_tokens: 4 }, output_tokens: 5, output_tokens_details: { reasoning_tokens: 2 }, total_tokens: 15 },
        errors: { data: [{ code: 'invalid_json_line', message: 'not JSON', line: 2 }] },
      }),
    );
    expect(text.split('\n')).toEqual([
      'batch       batch_1',
      'status      failed',
      'requests    40 total, 11 completed, 1 failed',
      'created     2023-11-14T22:13:20.000Z',
      'failed      2023-11-14T22:13:21.000Z',
      'input file  file-in',
      'usage       10 input (4 cached), 5 output (2 reasoning), 15 total tokens',
      'error: line 2: invalid_json_line: not JSON',
      '',
    ]);
  });
});
