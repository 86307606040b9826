/**
 * Reading one table of an app's TOML file (hox.toml, hop3.toml) without
 * letting anything through unseen: typed getters record each problem with the
 * file and the key path, and {@link TomlSection.finish} names every key no
 * getter asked for — unknown (with a suggestion) or known but not supported.
 */
import { parse, TomlError } from 'smol-toml';

export type TomlValues = Readonly<Record<string, unknown>>;

/** Parses a whole file; a syntax error becomes one problem naming the line and column. */
export function parseTomlFile(file: string, text: string, problems: string[]): TomlValues | undefined {
  try {
    return parse(text.replace(/^\uFEFF/, ''));
  } catch (err) {
    if (!(err instanceof TomlError)) throw err;
    const what = (err.message.split('\n')[0] ?? '').replace(/^Invalid TOML document: /, '');
    problems.push(`${file}: invalid TOML at line ${err.line}, column ${err.column}: ${what}`);
    return undefined;
  }
}

export function isTable(value: unknown): value is TomlValues {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

/** The TOML type of a value, for messages. */
export function tomlType(value: unknown): string {
  if (typeof value === 'string') return 'string';
  if (typeof value === 'boolean') return 'boolean';
  if (typeof value === 'number' || typeof value === 'bigint') {
    return Number.isInteger(Number(value)) ? 'integer' : 'float';
  }
  if (Array.isArray(value)) return 'array';
  return isTable(value) ? 'table' : 'date-time';
}

/** A value as the user wrote it, short enough for a message. */
export function shown(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  const type = tomlType(value);
  return type === 'array' ? 'an array' : `a ${type}`;
}

/** `run.workers.mailer`, `addons[0].name`, `env."odd.key"`. */
export function keyPath(prefix: string, key: string): string {
  const segment = /^[A-Za-z0-9_-]+$/.test(key) ? key : JSON.stringify(key);
  return prefix === '' ? segment : `${prefix}.${segment}`;
}

/** Optimal string alignment distance: a swap of two neighbours ('wbe' → 'web') costs 1. */
function editDistance(a: string, b: string): number {
  const width = b.length + 1;
  const d = new Array<number>((a.length + 1) * width).fill(0);
  const at = (i: number, j: number): number => d[i * width + j] ?? 0;
  for (let i = 0; i <= a.length; i++) d[i * width] = i;
  for (let j = 0; j <= b.length; j++) d[j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, at(i - 2, j - 2) + 1);
      d[i * width + j] = best;
    }
  }
  return at(a.length, b.length);
}

/** The candidate closest to `word`, if it is close enough to be a typo of it. */
export function closest(word: string, candidates: Iterable<string>): string | undefined {
  const limit = word.length <= 4 ? 1 : 2;
  let found: string | undefined;
  let foundDistance = limit + 1;
  for (const candidate of candidates) {
    const distance = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (distance < foundDistance) [found, foundDistance] = [candidate, distance];
  }
  return found;
}

export interface FinishOptions {
  /** Keys this file format defines but hyper_edge does not support: key → why, or what to use instead. */
  unsupported?: Readonly<Record<string, string>>;
  /** Keys of the other format written here by mistake: key → the full path to use instead. */
  aliases?: Readonly<Record<string, string>>;
}

export class TomlSection {
  readonly #asked = new Set<string>();

  constructor(
    /** The file name every message starts with. */
    readonly file: string,
    /** This table's key path ('' for the top level). */
    readonly prefix: string,
    readonly values: TomlValues,
    readonly problems: string[],
  ) {}

  path(key: string): string {
    return keyPath(this.prefix, key);
  }

  /** Records `<file>: <path> <message>`. */
  fail(key: string, message: string): void {
    this.problems.push(`${this.file}: ${this.path(key)} ${message}`);
  }

  /** Records that a key this file format defines is not supported by hyper_edge, and why. */
  unsupported(key: string, why: string): void {
    this.problems.push(`${this.file}: key '${this.path(key)}' is not supported by hyper_edge (${why})`);
  }

  /** Records that a value is not supported by hyper_edge (though valid in this file format), and why. */
  unsupportedValue(key: string, value: unknown, why: string): void {
    this.fail(key, `= ${shown(value)} is not supported by hyper_edge (${why})`);
  }

  /** The raw value (undefined when absent); the key counts as known. */
  raw(key: string): unknown {
    this.#asked.add(key);
    return Object.hasOwn(this.values, key) ? this.values[key] : undefined;
  }

  string(key: string): string | undefined {
    const value = this.raw(key);
    if (value === undefined || typeof value === 'string') return value;
    this.fail(key, `must be a string (got ${shown(value)})`);
    return undefined;
  }

  integer(key: string, min: number, max: number): number | undefined {
    const value = this.raw(key);
    if (value === undefined) return undefined;
    if (typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max) return value;
    this.fail(key, `must be an integer from ${min} to ${max} (got ${shown(value)})`);
    return undefined;
  }

  /** An array of strings. */
  stringList(key: string): string[] | undefined {
    const value = this.raw(key);
    if (value === undefined) return undefined;
    if (Array.isArray(value) && value.every((item) => typeof item === 'string')) return value;
    this.fail(key, `must be an array of strings (got ${shown(value)})`);
    return undefined;
  }

  /** A string or an array of strings (Hop3's command fields), as a list. */
  stringOrList(key: string): string[] | undefined {
    const value = this.raw(key);
    if (typeof value === 'string') return [value];
    if (value === undefined || (Array.isArray(value) && value.every((item) => typeof item === 'string'))) {
      return value;
    }
    this.fail(key, `must be a string or an array of strings (got ${shown(value)})`);
    return undefined;
  }

  /** A sub-table (`[run.workers]`, or an inline table). */
  section(key: string): TomlSection | undefined {
    const value = this.raw(key);
    if (value === undefined) return undefined;
    if (isTable(value)) return new TomlSection(this.file, this.path(key), value, this.problems);
    this.fail(key, `must be a table (got ${shown(value)})`);
    return undefined;
  }

  /** An array of tables (`[[addons]]`). */
  sections(key: string): TomlSection[] | undefined {
    const value = this.raw(key);
    if (value === undefined) return undefined;
    if (Array.isArray(value) && value.every(isTable)) {
      return value.map((item, i) => new TomlSection(this.file, `${this.path(key)}[${i}]`, item, this.problems));
    }
    this.fail(key, `must be an array of tables, written [[${this.path(key)}]] (got ${shown(value)})`);
    return undefined;
  }

  /** Every entry of a free-form table (`[env]`, `[run.workers]`): all keys count as known. */
  entries(): [string, unknown][] {
    const all = Object.entries(this.values);
    for (const [key] of all) this.#asked.add(key);
    return all;
  }

  /** Names every key no getter asked for. Call after reading all known keys. */
  finish(options: FinishOptions = {}): void {
    const unsupported = options.unsupported ?? {};
    for (const key of Object.keys(this.values)) {
      if (this.#asked.has(key)) continue;
      const why = Object.hasOwn(unsupported, key) ? unsupported[key] : undefined;
      if (why !== undefined) {
        this.unsupported(key, why);
        continue;
      }
      const alias = options.aliases && Object.hasOwn(options.aliases, key) ? options.aliases[key] : undefined;
      const near = alias ?? closestPath(this, key, [...this.#asked, ...Object.keys(unsupported)]);
      const hint = near === undefined ? '' : ` (did you mean '${near}'?)`;
      this.problems.push(`${this.file}: unknown key '${this.path(key)}'${hint}`);
    }
  }
}

function closestPath(section: TomlSection, key: string, candidates: string[]): string | undefined {
  const near = closest(key, candidates);
  return near === undefined ? undefined : section.path(near);
}
