import { describe, expect, it } from 'vitest';
import { orderDue, retryAtMs, usable, type SiteAcmeState } from './acme-certificates.js';

const DAY = 86_400_000;
const held = (over: Partial<SiteAcmeState> = {}): SiteAcmeState => ({
  domains: ['a.example'],
  keyPem: 'key',
  chainPem: 'chain',
  notBeforeMs: 0,
  notAfterMs: 90 * DAY,
  ...over,
});

describe('ACME orders', () => {
  it('are due with no certificate, for other names, and from two thirds of its life', () => {
    expect(orderDue(undefined, ['a.example'], 0)).toBe(true);
    expect(orderDue(held(), ['a.example'], 59 * DAY)).toBe(false);
    expect(orderDue(held(), ['a.example'], 60 * DAY)).toBe(true);
    expect(orderDue(held(), ['a.example', 'b.example'], DAY)).toBe(true);
  });

  it('back off after failures, 30 s doubling up to an hour, but not for new names', () => {
    const failed = (failures: number) =>
      ({ domains: ['a.example'], error: 'x', failedAtMs: 1_000_000, failures }) satisfies SiteAcmeState;
    expect(orderDue(failed(1), ['a.example'], 1_000_000 + 29_000)).toBe(false);
    expect(orderDue(failed(1), ['a.example'], 1_000_000 + 30_000)).toBe(true);
    expect(orderDue(failed(3), ['a.example'], 1_000_000 + 119_000)).toBe(false);
    expect(orderDue(failed(3), ['a.example'], 1_000_000 + 120_000)).toBe(true);
    expect(orderDue(failed(30), ['a.example'], 1_000_000 + 3_599_000)).toBe(false);
    expect(orderDue(failed(30), ['a.example'], 1_000_000 + 3_600_000)).toBe(true);
    expect(orderDue(failed(30), ['b.example'], 1_000_001)).toBe(true);
    // What the edges are told: when the root orders again.
    expect(retryAtMs(failed(3))).toBe(1_000_000 + 120_000);
    expect(retryAtMs(held())).toBeUndefined();
    // A failed renewal keeps the held certificate, and waits like any failure.
    expect(orderDue({ ...held(), error: 'x', failedAtMs: 70 * DAY, failures: 1 }, ['a.example'], 70 * DAY + 1)).toBe(
      false,
    );
  });

  it('serve a certificate only for the same names and until it expires', () => {
    expect(usable(held(), ['a.example'], 89 * DAY)).toBe(true);
    expect(usable(held(), ['a.example'], 90 * DAY)).toBe(false);
    expect(usable(held(), ['b.example'], DAY)).toBe(false);
    expect(usable({ domains: ['a.example'], error: 'x' }, ['a.example'], 0)).toBe(false);
  });
});
