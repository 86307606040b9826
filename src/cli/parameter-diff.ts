/**
 * What an update in place does to an instance's parameters, said before it is
 * requested: each key added, changed or removed, secret-looking values masked.
 */
import { formatValue, maskSecrets } from './output.js';

const canonical = (value: unknown): string => JSON.stringify(value, (_k, v: unknown) => sortKeys(v));

function sortKeys(value: unknown): unknown {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
  return Object.fromEntries(Object.entries(value as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b)));
}

/** One line per changed key, sorted: `+ key = value`, `~ key: old → new`, `- key (was value)`. */
export function parameterDiff(before: Record<string, unknown>, after: Record<string, unknown>): string[] {
  const old = maskSecrets(before, false);
  const now = maskSecrets(after, false);
  const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
  const lines: string[] = [];
  for (const key of keys) {
    const had = Object.hasOwn(before, key);
    const has = Object.hasOwn(after, key);
    if (had && !has) lines.push(`- ${key} (was ${formatValue(old[key])})`);
    else if (!had && has) lines.push(`+ ${key} = ${formatValue(now[key])}`);
    else if (canonical(before[key]) !== canonical(after[key]))
      lines.push(`~ ${key}: ${formatValue(old[key])} → ${formatValue(now[key])}`);
  }
  return lines;
}
