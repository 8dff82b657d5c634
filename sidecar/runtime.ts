// How the sidecar's Node process is meant to run: the injector sets these as NODE_OPTIONS and the
// benchmark runs with them. Left to itself, V8 sizes its heap from the machine, not from the
// process: under load the sidecar held ~420 MB, mostly garbage, more than the injected
// container's 256Mi limit. Its live heap is ~41 MB (half of it the tokenizer of routes that
// count tokens), so 128 MB of old space leaves room for three times that. The young generation
// keeps V8's usual 16 MB semi-spaces: smaller ones scavenge so often that short-lived request
// objects get promoted, and throughput fell by a quarter with 8 MB.
// --max-semi-space-size must be named: with only --max-old-space-size, V8 shrinks the young
// generation with it, and throughput fell to a fifth. Measured with `npm run bench`
// (bench/results/latest.md, ADR 0015); change them only with new figures.
export const SIDECAR_NODE_OPTIONS = '--max-semi-space-size=16 --max-old-space-size=128';
