import { describe, expect, it } from 'vitest';
import { sparklinePath } from './sparklinePath';

describe('sparkline path', () => {
  it('spreads values over the width, 0 at the bottom and max at the top', () => {
    expect(sparklinePath([0, 50, 100], 40, 10, 100)).toBe('M0 10L20 5L40 0');
  });

  it('clips values outside 0..max and rounds to 0.1 px', () => {
    expect(sparklinePath([-5, 250, 33.333], 3, 10, 200)).toBe('M0 10L1.5 0L3 8.3');
  });

  it('draws one value as a flat line and nothing for no values', () => {
    expect(sparklinePath([25], 48, 14, 100)).toBe('M0 10.5H48');
    expect(sparklinePath([], 48, 14, 100)).toBe('');
  });

  it('treats a zero max as 1 instead of dividing by zero', () => {
    expect(sparklinePath([0, 0], 10, 10, 0)).toBe('M0 10L10 10');
  });
});
