// Copies what tsc does not: the manifests, install scripts and plain JavaScript (.mjs) of built-in releases.
import { cpSync, existsSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';

const from = 'src/releases';
for (const name of readdirSync(from)) {
  const manifest = join(from, name, 'release.json');
  if (existsSync(manifest)) cpSync(manifest, join('dist/releases', name, 'release.json'));
  const install = join(from, name, 'install.sh');
  if (existsSync(install)) cpSync(install, join('dist/releases', name, 'install.sh'));
}
for (const entry of readdirSync(from, { recursive: true, withFileTypes: true })) {
  if (!entry.isFile() || !entry.name.endsWith('.mjs')) continue;
  const source = join(entry.parentPath ?? entry.path, entry.name);
  cpSync(source, join('dist/releases', relative(from, source)));
}
