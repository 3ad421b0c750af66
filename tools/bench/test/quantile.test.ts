// The nearest-rank quantile every latency percentile of the bench is read with.
import assert from 'node:assert/strict';
import { quantile } from '../src/shared.js';

/** 1, 2, …, n in ascending order: the k-th smallest is k. */
const ranks = (n: number): Float64Array => Float64Array.from({ length: n }, (_, i) => i + 1);

describe('quantile (nearest rank: the ⌈q·n⌉-th smallest)', () => {
  it('p99 of 100 values is the 99th smallest, not the largest', () => {
    assert.equal(quantile(ranks(100), 0.99), 99);
  });

  it('p50 of an even count is the lower middle value; of an odd count, the middle one', () => {
    assert.equal(quantile(ranks(100), 0.5), 50);
    assert.equal(quantile(ranks(4), 0.5), 2);
    assert.equal(quantile(ranks(5), 0.5), 3);
  });

  it('takes the ceiling of q·n when it is not an integer', () => {
    assert.equal(quantile(ranks(10), 0.99), 10);
    assert.equal(quantile(ranks(1000), 0.999), 999);
    assert.equal(quantile(ranks(7), 0.3), 3); // 2.1 → 3rd
  });

  it('is not thrown off by q·n landing a hair above an integer', () => {
    // 0.07 × 100 = 7.000000000000001 in floating point: still the 7th smallest.
    assert.equal(0.07 * 100 > 7, true);
    assert.equal(quantile(ranks(100), 0.07), 7);
    assert.equal(quantile(ranks(100), 0.29), 29);
  });

  it('q = 0 is the smallest, q = 1 the largest, one value is every quantile', () => {
    assert.equal(quantile(ranks(100), 0), 1);
    assert.equal(quantile(ranks(100), 1), 100);
    assert.equal(quantile(ranks(1), 0.99), 1);
    assert.equal(quantile(ranks(1), 0), 1);
  });

  it('is NaN for no values and refuses a q outside [0, 1]', () => {
    assert.ok(Number.isNaN(quantile(new Float64Array(0), 0.5)));
    assert.throws(() => quantile(ranks(3), 1.5), RangeError);
    assert.throws(() => quantile(ranks(3), -0.1), RangeError);
    assert.throws(() => quantile(ranks(3), Number.NaN), RangeError);
  });
});
