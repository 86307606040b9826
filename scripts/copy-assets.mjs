// Copies what tsc does not: the manifests of built-in releases.
import { cpSync, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const from = 'src/releases';
for (const name of readdirSync(from)) {
  const manifest = join(from, name, 'release.json');
  if (existsSync(manifest)) cpSync(manifest, join('dist/releases', name, 'release.json'));
  const install = join(from, name, 'install.sh');
  if (existsSync(install)) cpSync(install, join('dist/releases', name, 'install.sh'));
}
