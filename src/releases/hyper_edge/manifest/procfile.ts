/**
 * The Procfile: one `name: command` per line; `#` comments and blank lines are
 * allowed. `web` and `release` are special, every other name is a worker (the
 * merge into the app manifest decides that; this module only reads lines).
 */
import { FOREIGN_PROCESS_NAMES, PROCESS_NAME, commandProblem } from './manifest-draft.js';

export interface ProcfileEntry {
  name: string;
  command: string;
  /** 1-based line number, for messages. */
  line: number;
}

/**
 * The valid entries in file order; each problem (naming its line) is pushed to `problems`.
 * @example parseProcfile('web: node server.js\n', problems) // [{ name: 'web', command: 'node server.js', line: 1 }]
 */
export function parseProcfile(text: string, problems: string[]): ProcfileEntry[] {
  const entries: ProcfileEntry[] = [];
  const firstLine = new Map<string, number>();
  text
    .replace(/^\uFEFF/, '')
    .split(/\r?\n/)
    .forEach((raw, index) => {
      const line = index + 1;
      const trimmed = raw.trim();
      if (trimmed === '' || trimmed.startsWith('#')) return;
      const colon = trimmed.indexOf(':');
      if (colon < 0) {
        problems.push(`Procfile line ${line}: expected 'name: command' (got ${JSON.stringify(shorten(trimmed))})`);
        return;
      }
      const name = trimmed.slice(0, colon).trim();
      const command = trimmed.slice(colon + 1).trim();
      const problem = entryProblem(name, command, firstLine.get(name));
      if (problem !== undefined) {
        problems.push(`Procfile line ${line}: ${problem}`);
        return;
      }
      firstLine.set(name, line);
      entries.push({ name, command, line });
    });
  return entries;
}

function entryProblem(name: string, command: string, seenOnLine: number | undefined): string | undefined {
  if (!PROCESS_NAME.test(name)) {
    return `bad process name ${JSON.stringify(shorten(name))} (want [a-z][a-z0-9_-]{0,30})`;
  }
  const foreign = FOREIGN_PROCESS_NAMES.get(name);
  if (foreign !== undefined) return `process name '${name}' is not supported by hyper_edge (${foreign})`;
  if (seenOnLine !== undefined) return `duplicate process '${name}' (first defined on line ${seenOnLine})`;
  const problem = commandProblem(command);
  return problem === undefined ? undefined : `the command of '${name}' ${problem}`;
}

function shorten(text: string): string {
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
