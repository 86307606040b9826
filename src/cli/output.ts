/** Human output helpers: aligned tables and masked secrets. */

export function table(headers: string[], rows: string[][]): string[] {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(headers.map((h) => h.toUpperCase())), ...rows.map(line)];
}

const SECRET_KEY = /pass(word)?|secret|token|private|credential|api[_-]?key/i;

/** Whether a parameter's key names a secret (its value is masked until asked for: CLI and console alike). */
export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key);
}

/** Whether a string holds a URL with a password (`scheme://user:password@host`). */
export const hasUrlPassword = (value: string): boolean => /\/\/[^:/@\s]+:[^@/\s]+@/.test(value);

/** Masks values whose key looks secret, and passwords inside URLs, unless `reveal`. */
export function maskSecrets(params: Record<string, unknown>, reveal: boolean): Record<string, unknown> {
  if (reveal) return params;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(params)) {
    if (SECRET_KEY.test(key)) out[key] = '••••••';
    else if (typeof value === 'string') out[key] = value.replace(/(\/\/[^:/@\s]+:)[^@/\s]+@/g, '$1••••••@');
    else out[key] = value;
  }
  return out;
}

export function formatValue(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** Local time, to the second: `2026-12-02 09:14:03`. */
export function localTime(iso: string): string {
  const d = new Date(iso);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}
