/**
 * argv running one of a built-in release's programs with the agent's Node.js:
 * the compiled `.js` next to the release module, or — when the release runs
 * from its TypeScript sources (tests, `tsx`) — the `.ts` through tsx's loader.
 *
 * @example
 * releaseProgram(import.meta.url, input.tools.node, 'runner/main', ['runner.json'])
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const TSX_LOADER = join(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  'node_modules',
  'tsx',
  'dist',
  'loader.mjs',
);

export function releaseProgram(releaseModuleUrl: string, node: string, relative: string, args: string[]): string[] {
  const here = dirname(fileURLToPath(releaseModuleUrl));
  if (!releaseModuleUrl.endsWith('.ts')) return [node, join(here, `${relative}.js`), ...args];
  return [node, '--import', TSX_LOADER, join(here, `${relative}.ts`), ...args];
}
