/** `--param k=v` (string) and `k:=json` (typed), `--sla k=v`: parsed once, errors name the flag and value. */
import { readFileSync } from 'node:fs';
import { HoxError } from '../shared/errors.js';

export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export function parseAssignments(flag: string, items: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const item of items) {
    const typed = /^([^=:]+):=(.*)$/s.exec(item);
    const plain = /^([^=]+)=(.*)$/s.exec(item);
    if (typed !== null) {
      try {
        out[typed[1]!] = JSON.parse(typed[2]!);
      } catch {
        throw new HoxError('HOX_BAD_REQUEST', `${flag} '${item}': the value after := must be JSON`, { field: flag });
      }
    } else if (plain !== null && plain[1]!.trim() !== '') {
      out[plain[1]!] = plain[2]!;
    } else {
      throw new HoxError('HOX_BAD_REQUEST', `${flag} '${item}': expected KEY=VALUE (or KEY:=JSON)`, { field: flag });
    }
  }
  return out;
}

export function readParamsFile(path: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new HoxError(
      'HOX_BAD_REQUEST',
      `--params ${path}: ${error instanceof Error ? error.message : String(error)}`,
      {
        field: '--params',
        cause: error,
      },
    );
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
    throw new HoxError('HOX_BAD_REQUEST', `--params ${path}: must hold a JSON object`, { field: '--params' });
  return parsed as Record<string, unknown>;
}

export function parseSla(items: string[]): Record<string, string> {
  const raw = parseAssignments('--sla', items);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw)) out[k] = typeof v === 'string' ? v : JSON.stringify(v);
  return out;
}
