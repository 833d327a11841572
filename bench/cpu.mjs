// bench/cpu.mjs — CPU figures of a target's processes: per request over a run of requests,
// and per extra streamed chunk (shared by bench/run.mjs and bench/quick.mjs).
import * as T from './targets.mjs';
import { concurrentStreams } from './sse-client.mjs';

/** latencyRun's `around` hook: `cpuPerRequestMs` = CPU of `pids` over the measured requests ÷ their count. */
export function cpuAround(pids) {
  return { before: () => T.cpuMs(pids), after: (before, count) => ({ cpuPerRequestMs: (T.cpuMs(pids) - before) / count }) };
}

/**
 * CPU per extra chunk: the CPU of `streams` long streams at once minus that of as many short
 * ones, over the extra chunks received, so per-request work (auth, limits, records) cancels
 * out and what is left is what each chunk costs. Measured `repeats` times after a warm-up;
 * the median is the figure (process CPU on a shared machine is noisy). `makeSpec(which)`
 * gives a request for 'stream' (`longTokens` chunks) or 'short' (`shortTokens`). Null when
 * the target has no processes of its own or a stream did not finish within 20 s.
 */
export async function marginalChunkCpu(target, makeSpec, { streams, repeats, longTokens, shortTokens }) {
  const pids = target.pids();
  if (!pids.length) return null;
  const run = async (which, expectedTokens) => {
    const before = T.cpuMs(pids);
    const r = await concurrentStreams(target.url, () => makeSpec(which), { n: streams, expectedTokens, timeoutMs: 20_000 });
    return { cpu: T.cpuMs(pids) - before, tokens: r.receivedTokens, complete: r.completed === r.streams };
  };
  await run('short', shortTokens); // warm-up
  const samples = [];
  for (let i = 0; i < repeats; i++) {
    const long = await run('stream', longTokens);
    const short = await run('short', shortTokens);
    if (!long.complete || !short.complete || long.tokens <= short.tokens) return null;
    samples.push((long.cpu - short.cpu) / (long.tokens - short.tokens));
  }
  return median(samples);
}

/** The median of the values that are not null (the upper one of an even count); null when none are. */
export function median(values) {
  const sorted = values.filter((v) => v !== null).sort((a, b) => a - b);
  return sorted.length ? sorted[Math.floor(sorted.length / 2)] : null;
}
