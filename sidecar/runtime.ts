// How the sidecar's Node process is meant to run: the injector sets these in the sidecar
// container's environment and the benchmark runs with them. Left to itself, V8 sizes its heap from
// the machine, not from the process: under load the sidecar held ~420 MB, mostly garbage, more than
// the injected container's 256Mi limit. Its live heap is ~27 MB (the token rank tables live outside
// it, ADR 0021), so 128 MB of old space leaves room for four times that. The young generation keeps
// V8's usual 16 MB semi-spaces: smaller ones scavenge so often that short-lived request objects get
// promoted, and throughput fell by a quarter with 8 MB. --max-semi-space-size must be named: with
// only --max-old-space-size, V8 shrinks the young generation with it, and throughput fell to a
// fifth. Measured with `npm run bench` (bench/results/latest.md, ADR 0015); change them only with
// new figures.
export const SIDECAR_NODE_OPTIONS = '--max-semi-space-size=16 --max-old-space-size=128';

// glibc gives each thread that allocates its own malloc arena, and freed memory stays in them:
// V8's compiler and collector threads and libuv's pool held 12-21 MB more RSS under load than one
// shared arena does, with no difference in throughput or CPU per call that the bench could see
// (ADR 0015). Two arenas kept about half of the saving.
export const SIDECAR_MALLOC_ARENA_MAX = '1';

/** The sidecar container's environment for its process, as the injector writes it. */
export const SIDECAR_RUNTIME_ENV: ReadonlyArray<{ name: string; value: string }> = [
  { name: 'NODE_OPTIONS', value: SIDECAR_NODE_OPTIONS },
  { name: 'MALLOC_ARENA_MAX', value: SIDECAR_MALLOC_ARENA_MAX },
];
