// How the operator's Node process is meant to run. Its live heap stays near 40 MB even while it
// writes 1,000 ConfigMaps, but V8 sizes its young generation and grows the old one from the
// machine's memory, not from what the process uses: on a large node an unconstrained operator
// peaks near 300 MB of RSS. These flags keep it near 125 MB at the same speed (bench/operator.ts);
// the Helm chart sets them as NODE_OPTIONS.
export const OPERATOR_NODE_OPTIONS = '--max-semi-space-size=2 --max-old-space-size=96';
