// How the sidecar's Node process is meant to run (the injector sets these as NODE_OPTIONS).
// Its live heap stays near 40 MB under load, but V8 sizes the young generation and lets the old
// one grow from the machine's memory, not from what the process uses: on a large node an
// unconstrained sidecar holds several hundred MB of garbage before a full collection. A small
// young generation also means shorter scavenges, which are pauses on every call in flight.
// Measured with `npm run bench` (bench/results/latest.md); change them only with new figures.
export const SIDECAR_NODE_OPTIONS = '--max-semi-space-size=2 --max-old-space-size=96';
