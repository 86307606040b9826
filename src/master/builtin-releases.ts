/**
 * What the master knows of the built-in releases it ships (`src/releases/<name>/release.json`, copied next
 * to the compiled code): their internal software types. Read once, by `createMaster`, at start; the domain
 * gets the result, never the files.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { InternalSoftwareTypes } from './internal-types.js';

const BUILTIN_RELEASES_DIR = fileURLToPath(new URL('../releases/', import.meta.url));

/** Built-in release name → its internal software types (releases without any are left out). */
export function readBuiltinInternalTypes(dir = BUILTIN_RELEASES_DIR): InternalSoftwareTypes {
  const out = new Map<string, ReadonlySet<string>>();
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    let manifest: { internalSoftwareTypes?: unknown };
    try {
      manifest = JSON.parse(readFileSync(join(dir, entry.name, 'release.json'), 'utf8')) as typeof manifest;
    } catch {
      continue; // not a release folder
    }
    const types = manifest.internalSoftwareTypes;
    if (Array.isArray(types) && types.length > 0 && types.every((t) => typeof t === 'string'))
      out.set(entry.name, new Set(types));
  }
  return out;
}
