/**
 * What `hox releases show NAME` prints of a built-in release: its software types and, for each, the
 * parameters a request may give and the connection parameters it publishes, read from the release's
 * own JSON Schemas (the ones the node agent validates with).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HoxError } from '../shared/errors.js';
import type { ReleaseDefinition } from '../release-kit/types.js';

/** Where the built-in releases are, next to this code (src/releases or dist/releases). */
export const BUILTIN_RELEASES_DIR = fileURLToPath(new URL('../releases/', import.meta.url));
const BUILTIN_NAME = /^[a-z][a-z0-9_-]{0,62}$/;

export interface ParameterView {
  name: string;
  type: string;
  required: boolean;
  default?: unknown;
  description?: string;
}

export interface SoftwareTypeView {
  name: string;
  /** Requested by the release's own instances only (a user's request for it is refused). */
  internal: boolean;
  parameters: ParameterView[];
  /** Whether the parameters object refuses keys it does not list. */
  closed: boolean;
  connection: ParameterView[];
  schemas: { parameters: Record<string, unknown>; connection: Record<string, unknown> };
}

export interface ReleaseView {
  name: string;
  version: string;
  softwareTypes: SoftwareTypeView[];
}

/** The names of the built-in releases (a folder with a release.json). */
export function builtinReleaseNames(dir = BUILTIN_RELEASES_DIR): string[] {
  let entries: string[];
  try {
    entries = readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isDirectory() && BUILTIN_NAME.test(e.name))
      .map((e) => e.name);
  } catch {
    return [];
  }
  return entries.filter((name) => existsSync(join(dir, name, 'release.json'))).sort();
}

/** Describes built-in release `name` from its manifest and module; refuses any other name. */
export async function describeBuiltinRelease(name: string, dir = BUILTIN_RELEASES_DIR): Promise<ReleaseView> {
  const known = builtinReleaseNames(dir);
  if (!known.includes(name))
    throw new HoxError(
      'HOX_NOT_FOUND',
      `'${name}' is not a built-in release (built-in: ${known.join(', ')}); a release supplied by URL describes its software types in its own release module`,
    );
  const manifest = JSON.parse(readFileSync(join(dir, name, 'release.json'), 'utf8')) as {
    version: string;
    entry: string;
    internalSoftwareTypes?: string[];
  };
  const entry = join(dir, name, manifest.entry);
  const module = (await import(entry)) as { default: ReleaseDefinition };
  const internal = new Set(manifest.internalSoftwareTypes ?? []);
  return {
    name,
    version: manifest.version,
    softwareTypes: Object.entries(module.default.softwareTypes).map(([type, def]) => ({
      name: type,
      internal: internal.has(type),
      parameters: properties(def.parameters),
      closed: def.parameters.additionalProperties === false,
      connection: properties(def.connection),
      schemas: { parameters: def.parameters, connection: def.connection },
    })),
  };
}

function properties(schema: Record<string, unknown>): ParameterView[] {
  const props = (schema.properties ?? {}) as Record<string, Record<string, unknown>>;
  const required = new Set(Array.isArray(schema.required) ? (schema.required as string[]) : []);
  return Object.entries(props).map(([name, p]) => ({
    name,
    type: typeOf(p),
    required: required.has(name),
    ...(p.default !== undefined ? { default: p.default } : {}),
    ...(typeof p.description === 'string' ? { description: p.description } : {}),
  }));
}

/** A short type: `integer 1–7`, `quorum|strict|async`, `string ≤ 64`, `object`… */
function typeOf(p: Record<string, unknown>): string {
  if (Array.isArray(p.enum)) return p.enum.map(String).join('|');
  if (p.const !== undefined) return JSON.stringify(p.const);
  const type = Array.isArray(p.type) ? p.type.join('|') : typeof p.type === 'string' ? p.type : 'any';
  const bound = (v: unknown): string => (typeof v === 'number' ? String(v) : '');
  const range =
    typeof p.minimum === 'number' || typeof p.maximum === 'number'
      ? ` ${bound(p.minimum)}–${bound(p.maximum)}`
      : typeof p.maxLength === 'number'
        ? ` ≤ ${p.maxLength} chars`
        : '';
  return `${type}${range}`;
}

/** The text view: one block per software type, internal ones last and marked. */
export function renderRelease(view: ReleaseView): string[] {
  const lines = [`${view.name} ${view.version}`];
  const types = [...view.softwareTypes].sort((a, b) => Number(a.internal) - Number(b.internal));
  for (const t of types) {
    lines.push('', `software type ${t.name}${t.internal ? ' (internal: requested by the release itself)' : ''}`);
    if (t.parameters.length === 0) lines.push(`  parameters: none${t.closed ? '' : ' declared'}`);
    else {
      lines.push(`  parameters${t.closed ? ' (no others accepted)' : ''}:`);
      lines.push(...block(t.parameters));
    }
    if (t.connection.length > 0) lines.push('  publishes:', ...block(t.connection));
  }
  return lines;
}

/** Parameters one per line, names aligned. */
function block(params: ParameterView[]): string[] {
  const width = Math.max(...params.map((p) => p.name.length));
  return params.map((p) => {
    const extra = [
      p.required ? 'required' : null,
      p.default !== undefined ? `default ${JSON.stringify(p.default)}` : null,
    ].filter((x) => x !== null);
    const detail = `${p.type}${extra.length > 0 ? ` (${extra.join(', ')})` : ''}`;
    return `    ${p.name.padEnd(width)}  ${detail}${p.description ? ` — ${p.description}` : ''}`;
  });
}
