const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'] as const;

/**
 * Bytes for people: binary units, one decimal when not whole. No I/O; the CLI and the agent's
 * messages share it.
 *
 * @example
 * formatBytes(2 * 1024 ** 3) // '2 GiB'
 * formatBytes(84_200_000)    // '80.3 MiB'
 * formatBytes(512)           // '512 B'
 */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const rounded = Math.round(value * 10) / 10;
  return `${Number.isInteger(rounded) ? rounded.toFixed(0) : rounded.toFixed(1)} ${UNITS[unit]}`;
}
