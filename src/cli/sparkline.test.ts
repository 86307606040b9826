import { describe, expect, it } from 'vitest';
import { bytesText, sparkline } from './sparkline.js';

describe('sparkline', () => {
  it('spans its own range, lowest to highest, gaps as spaces', () => {
    expect(sparkline([0, 1, 2, 3, 4, 5, 6, 7])).toBe('▁▂▃▄▅▆▇█');
    expect(sparkline([10, NaN, 20])).toBe('▁ █');
    expect(sparkline([5, 5, 5])).toBe('▄▄▄');
    expect(sparkline([NaN, NaN])).toBe('  ');
  });

  it('writes bytes in binary units', () => {
    expect(bytesText(640)).toBe('640 B');
    expect(bytesText(12 * 1024 * 1024)).toBe('12.0 MiB');
    expect(bytesText(1.5 * 1024 ** 3)).toBe('1.5 GiB');
    expect(bytesText(200 * 1024)).toBe('200 KiB');
  });
});
