// The benchmark report's budget verdicts (bench/report.mjs): a figure at the budget meets it,
// one a step over does not, a missing figure is no verdict at all, and a CPU difference is
// shown with the spread of the rounds it comes from.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { agentFigures, cpuAbove, perRound, ratioWithin, renderAgentSection, within } from '../../bench/report.mjs';

test('a CPU figure equal to its budget up to rounding meets it', () => {
  // One round's difference as the bench computes it: 1,240 and 940 ms of CPU over 300
  // requests each give 1.0000000000000004, shown as 1.000.
  const difference = 1240 / 300 - 940 / 300;
  assert.ok(difference > 1);
  assert.equal(within(difference, 1), true);
  assert.equal(within(0.1 + 0.2, 0.3), true);
});

test('a CPU figure one tick over its budget does not meet it', () => {
  assert.equal(within(1 + 10 / 300, 1), false);
  assert.equal(within(0.001, 0), false);
});

test('a missing figure gives no verdict', () => {
  assert.equal(within(null, 1), null);
  assert.equal(within(0.5, undefined), null);
  assert.equal(within(Number.NaN, 1), null);
});

test('CPU above a baseline is the median of round-by-round differences', () => {
  const a = { cpuRoundsMs: [1.0, 1.5, 1.2, 9.0, 1.1], cpuPerRequestMs: 1.2 };
  const b = { cpuRoundsMs: [0.8, 1.0, 1.0, 1.0, 1.0], cpuPerRequestMs: 1.0 };
  // Differences 0.2, 0.5, 0.2, 8.0, 0.1: the outlier round does not move the median.
  assert.ok(Math.abs(cpuAbove(a, b) - 0.2) < 1e-9);
});

test('a round missing on either side is left out of the differences', () => {
  const a = { cpuRoundsMs: [1.0, null, 1.4], cpuPerRequestMs: 1.2 };
  const b = { cpuRoundsMs: [0.9, 1.0, null], cpuPerRequestMs: 1.0 };
  assert.ok(Math.abs(cpuAbove(a, b) - 0.1) < 1e-9);
});

test('without rounds, CPU above a baseline is the difference of the figures, or unknown', () => {
  assert.ok(Math.abs(cpuAbove({ cpuPerRequestMs: 0.5 }, { cpuPerRequestMs: 0.3 }) - 0.2) < 1e-9);
  assert.equal(cpuAbove({ cpuPerRequestMs: 0.5 }, {}), null);
  assert.equal(cpuAbove(undefined, { cpuPerRequestMs: 0.3 }), null);
});

test('the per-round figure shows the median difference and the range of the rounds', () => {
  const a = { cpuRoundsMs: [1.0, 1.5, 1.2], cpuPerRequestMs: 1.2 };
  const b = { cpuRoundsMs: [1.1, 1.0, 1.0], cpuPerRequestMs: 1.0 };
  assert.equal(perRound(a, b), 'per round: +0.200 ms, from −0.100 ms to +0.500 ms');
  assert.equal(perRound({ cpuPerRequestMs: 0.5 }, { cpuPerRequestMs: 0.3 }), 'per round: +0.200 ms');
  assert.equal(perRound({}, {}), 'per round: —');
});

test('a ratio budget is met at the limit and not a step above, and needs both figures', () => {
  assert.equal(ratioWithin(1.2, 1.0, 1.2), true);
  assert.equal(ratioWithin(0.36, 0.3, 1.2), true);
  assert.equal(ratioWithin(1.21, 1.0, 1.2), false);
  assert.equal(ratioWithin(1.0, 0, 1.2), null);
  assert.equal(ratioWithin(null, 1.0, 1.2), null);
});

test('the agent figures are the tool turns above the plain turn, and per extra step', () => {
  const kind = (p50, toolCalls, paired = null, stepGap = null) => ({ toolCalls, done: { p50 }, pairedAbovePlain: { p50: paired }, stepGap: stepGap === null ? null : { p50: stepGap } });
  const f = agentFigures({ kinds: { plain: kind(10, 0), offered: kind(11, 0, 1), oneTool: kind(18, 1, 7.5), toolLoop: kind(34, 3, 24, 8.2) } });
  assert.deepEqual(f.oneTool, { ms: 8, ratio: 1.8, pairedMs: 7.5 });
  assert.equal(f.oneToolOverOffered.ms, 7);
  assert.equal(f.oneToolOverOffered.pairedMs, null);
  assert.equal(f.toolLoop.ratio, 3.4);
  assert.equal(f.perExtraStepMs, 8);
  assert.equal(f.stepGapP50Ms, 8.2);
});

test('agent figures without a measured kind are unknown, and the section says it was not measured', () => {
  const f = agentFigures({ kinds: { plain: { toolCalls: 0, done: { p50: 10 } } } });
  assert.equal(f.oneTool, null);
  assert.equal(f.perExtraStepMs, null);
  assert.match(renderAgentSection(undefined), /Not measured in this run/);
});
