import { randomBytes } from 'node:crypto';

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

function alnum(n: number): string {
  const bytes = randomBytes(n);
  let s = '';
  for (const b of bytes) s += ALNUM[b % ALNUM.length];
  return s;
}

function hex(n: number): string {
  return randomBytes(Math.ceil(n / 2)).toString('hex').slice(0, n);
}

// Prefixes and lengths follow what the real API hands out, so callers that
// sniff ids (e.g. by prefix) behave as they would in production.
export const ids = {
  request: () => `req_${hex(32)}`,
  chat: () => `chatcmpl-${alnum(29)}`,
  toolCall: () => `call_${alnum(24)}`,
  response: () => `resp_${hex(48)}`,
  message: () => `msg_${hex(48)}`,
  reasoning: () => `rs_${hex(48)}`,
  functionCall: () => `fc_${hex(48)}`,
  moderation: () => `modr-${hex(32)}`,
  file: () => `file-${alnum(22)}`,
  batch: () => `batch_${hex(32)}`,
  batchRequest: () => `batch_req_${hex(32)}`,
};

export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}
