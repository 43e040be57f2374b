// The benchmark's statistics helpers (bench/stats.mjs): the README's numbers
// are medians and ratios computed here, and the interleaved schedule is what
// makes two variants comparable on a noisy machine.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { median, summarize, ratio, schedule, interleave, fmt } from '../../bench/stats.mjs';

test('median of odd, even, unsorted and empty samples', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(median([10]), 10);
  assert.ok(Number.isNaN(median([])));
  const xs = [5, 1, 4];
  median(xs);
  assert.deepEqual(xs, [5, 1, 4], 'input is not reordered');
});

test('summarize gives n, median, min, max', () => {
  assert.deepEqual(summarize([7, 1, 3, 100]), { n: 4, median: 5, min: 1, max: 100 });
  assert.equal(summarize([]), null);
});

test('ratio refuses missing or zero denominators', () => {
  assert.equal(ratio(6, 3), 2);
  assert.equal(ratio(1, 0), null);
  assert.equal(ratio(null, 2), null);
  assert.equal(ratio(NaN, 2), null);
});

test('schedule: warm-up over every variant, then A,B,A,B rounds', () => {
  const s = schedule(['A', 'B'], 3, 1);
  assert.deepEqual(s.map((x) => x.name).join(''), 'AB' + 'ABABAB');
  assert.deepEqual(s.map((x) => x.warm), [true, true, false, false, false, false, false, false]);
});

test('interleave runs variants alternately, drops warm-up samples, keeps batches', async () => {
  const order = [];
  let a = 0;
  const res = await interleave(
    [
      { name: 'A', run: async () => { order.push('A'); return ++a; } },
      { name: 'B', run: async () => { order.push('B'); return [10, 20]; } },
    ],
    { rounds: 2, warmup: 1 },
  );
  assert.equal(order.join(''), 'ABABAB');
  assert.deepEqual(res.samples.get('A'), [2, 3], 'the warm-up sample (1) is discarded');
  assert.deepEqual(res.samples.get('B'), [10, 20, 10, 20]);
  assert.equal(res.failed.size, 0);
});

test('interleave: a failing variant is reported and skipped, others go on', async () => {
  let calls = 0;
  const res = await interleave(
    [
      { name: 'bad', run: async () => { calls++; throw new Error('launcher: not built yet\nstack'); } },
      { name: 'good', run: async () => 1 },
    ],
    { rounds: 3, warmup: 1 },
  );
  assert.equal(calls, 1, 'not retried after the first failure');
  assert.equal(res.failed.get('bad'), 'launcher: not built yet');
  assert.deepEqual(res.samples.get('good'), [1, 1, 1]);
});

test('fmt keeps three significant digits', () => {
  assert.equal(fmt(3.14159), '3.14');
  assert.equal(fmt(1234.5), '1235');
  assert.equal(fmt(0.012345), '0.0123');
  assert.equal(fmt(null), '–');
});
