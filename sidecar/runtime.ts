// How the sidecar's Node process is meant to run: the injector sets these as NODE_OPTIONS and the
// benchmark runs with them. Left to itself, V8 sizes its heap from the machine, not from the
// process: on a large node an idle-looking sidecar held 400 MB of garbage under load, more than
// the injected container's 256Mi limit. Its live heap is about 60 MB (a third of it the tokenizer
// of routes that count tokens), so 128 MB of old space leaves room for twice that, and an 8 MB
// semi-space keeps the young generation at 24 MB. The price is more concurrent marking on V8's
// helper threads, not on the thread that serves requests (bench/results/latest.md, ADR 0015).
// Naming --max-semi-space-size matters: with only --max-old-space-size, V8 shrinks the young
// generation with it and scavenges so often that throughput falls by two thirds.
export const SIDECAR_NODE_OPTIONS = '--max-semi-space-size=8 --max-old-space-size=128';
