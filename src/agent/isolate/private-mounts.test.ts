import { describe, expect, it } from 'vitest';
import { keepMountPoints } from './private-mounts.js';

describe('keepMountPoints', () => {
  it('keeps what lies under /tmp visible at its path, once, and nothing else', () => {
    const tmp = '/var/lib/hox/tmp/p0/tmp';
    expect(
      keepMountPoints(tmp, [
        '/tmp/hox-node-1-abc', // a data dir in /tmp (tests)
        '/tmp/checkout', // hox unpacked in /tmp: its code and node_modules
        '/tmp/checkout/src/releases', // inside the previous one: visible through it
        '/tmp/checkout',
        '/tmpfoo/x', // not under /tmp
        '/var/lib/hox',
      ]),
    ).toEqual([
      { source: '/tmp/hox-node-1-abc', target: `${tmp}/hox-node-1-abc` },
      { source: '/tmp/checkout', target: `${tmp}/checkout` },
    ]);
  });
});
