/**
 * Debian's Chromium for tests and benchmarks (installed by scripts/install-system-deps.sh; never a downloaded
 * browser), driven with playwright-core.
 */

export const CHROMIUM = '/usr/bin/chromium';

/** Headless, as root, and quiet on the network: no background fetches, updates or sync (none reaches out here). */
export const CHROMIUM_FLAGS: readonly string[] = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];
