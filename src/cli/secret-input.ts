/**
 * Secrets reach `hox` through files, stdin or the environment, never its
 * command line: every user of the machine reads every process's argv
 * (`ps`, `/proc/<pid>/cmdline`), while a file is the owner's and a process's
 * environment is readable by its user and root only. An option that would
 * carry a secret is refused (exit 2) with the safe form to use instead.
 */
import { readFileSync } from 'node:fs';
import { HoxError } from '../shared/errors.js';

/** The refusal of a secret given in argv: names the option and the safe forms. */
export function secretInArgv(option: string, safeForms: string): HoxError {
  return new HoxError(
    'HOX_BAD_REQUEST',
    `${option} would put a secret on the command line, where every user of this machine can read it (ps, /proc): use ${safeForms}`,
    { field: option },
  );
}

/** The first line of a file holding a secret (a token, a URL with its password), blanks trimmed. */
export function readSecretFile(path: string, option: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new HoxError('HOX_BAD_REQUEST', `${option} ${path}: cannot read it (${(error as Error).message})`, {
      field: option,
      cause: error,
    });
  }
  const value = text.trim().split('\n')[0]?.trim() ?? '';
  if (value === '') throw new HoxError('HOX_BAD_REQUEST', `${option} ${path} is empty`, { field: option });
  return value;
}

/**
 * Whether a PostgreSQL connection URL carries a password (`user:pass@`, or a `password`/`sslpassword` query
 * parameter, which node-postgres reads too). A URL without one is fine in argv: libpq-style PGPASSWORD or
 * PGPASSFILE supply it.
 */
export function urlHasPassword(url: string): boolean {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    // Not parseable as a URL: be conservative, anything between '//' and '@' holding a ':' counts.
    return /^[a-z]+:\/\/[^/@?#]*:[^/@?#]*@/i.test(url);
  }
  return parsed.password !== '' || parsed.searchParams.has('password') || parsed.searchParams.has('sslpassword');
}
