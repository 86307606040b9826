// Bundles the `hox` command line (src/bin/hox.ts and what it imports: src/cli, src/client, src/protocol, commander,
// the app manifest reader…) with esbuild into dist/bin/hox.js and its chunks, run by `npm run build` after tsc. Node
// 20 loads ES modules one file at a time (resolve, read, compile, link) and commander through its CommonJS wrapper:
// bundled, read commands start in much less CPU time than from tsc's ~50 files (bench/cli-startup,
// docs/benchmarks.md).
//
// What stays outside the bundle, imported from tsc's output (dist/) as before:
//  - the master, the agent, the stores and the release kit (src/master, src/agent, src/store, src/release-kit): only
//    the actions that run them import them, lazily, and they are the server side;
//  - src/shared/errors.ts: one HoxError class in the process (`instanceof HoxError` turns errors into exit codes,
//    also those `hox up`'s master throws);
//  - any file that uses `import.meta` (it finds files relative to its own path: the pilot's example app, the
//    releases' schemas);
//  - npm packages reached only through the above (fastify, kysely, pg…: esbuild never sees them).
// Dynamic imports become chunks next to hox.js (dist/bin/hox.*.js), so one read command parses only what it runs.
//
//   node scripts/bundle-cli.mjs                          # dist/bin/hox.js, outside modules from dist/
//   node scripts/bundle-cli.mjs --outdir D --sources     # D/hox.js, outside modules from src/*.ts (run it under tsx:
//                                                        # test/cli-startup.test.ts checks the bundle without a build)
import { build } from 'esbuild';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = resolve(import.meta.dirname, '..');
const SRC = join(ROOT, 'src');
const DIST = join(ROOT, 'dist');
const ENTRY = join(SRC, 'bin', 'hox.ts');
const OUTSIDE_DIRS = ['master', 'agent', 'store', 'release-kit'].map((dir) => join(SRC, dir) + sep);
const OUTSIDE_FILES = new Set([join(SRC, 'shared', 'errors.ts')]);

const { values } = parseArgs({
  options: { outdir: { type: 'string', default: join(DIST, 'bin') }, sources: { type: 'boolean', default: false } },
});
const outdir = resolve(values.outdir);

/** The source file a relative import of a source file names (`./x.js` is `./x.ts`), or undefined when not in src/. */
function sourceFile(resolveDir, specifier) {
  const target = resolve(resolveDir, specifier);
  if (!target.startsWith(SRC + sep)) return undefined;
  const ts = target.replace(/\.js$/, '.ts');
  return existsSync(ts) ? ts : target;
}

function bundled(file) {
  if (file === ENTRY) return true;
  if (OUTSIDE_FILES.has(file) || OUTSIDE_DIRS.some((dir) => file.startsWith(dir))) return false;
  return !readFileSync(file, 'utf8').includes('import.meta');
}

/** How the bundle imports a source file it leaves outside: tsc's output, or (--sources) the .ts file itself. */
function outsidePath(file) {
  if (values.sources) return pathToFileURL(file).href;
  const compiled = join(DIST, relative(SRC, file)).replace(/\.ts$/, '.js');
  const path = relative(outdir, compiled).split(sep).join('/');
  return path.startsWith('.') ? path : `./${path}`;
}

const split = {
  name: 'hox-cli-split',
  setup(b) {
    b.onResolve({ filter: /^\.\.?\// }, (args) => {
      const file = sourceFile(args.resolveDir, args.path);
      if (file === undefined || bundled(file)) return undefined;
      return { path: outsidePath(file), external: true };
    });
  },
};

// The previous bundle's chunks (their names change with their content).
mkdirSync(outdir, { recursive: true });
for (const name of readdirSync(outdir))
  if (/^hox\..+\.js(\.map)?$/.test(name)) rmSync(join(outdir, name), { force: true });

const result = await build({
  entryPoints: [ENTRY],
  outdir,
  entryNames: '[name]',
  chunkNames: 'hox.[name]-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: true,
  plugins: [split],
  // commander is CommonJS and requires Node's modules: give its bundled copy a require().
  banner: {
    js: "import { createRequire as __hoxRequire } from 'node:module'; const require = __hoxRequire(import.meta.url);",
  },
  metafile: true,
  logLevel: 'warning',
});
const outputs = Object.entries(result.metafile.outputs).filter(([name]) => name.endsWith('.js'));
const bytes = outputs.reduce((sum, [, output]) => sum + output.bytes, 0);
process.stdout.write(
  `bundled the hox CLI: ${relative(ROOT, join(outdir, 'hox.js'))} and ${outputs.length - 1} chunks, ${Math.round(bytes / 1024)} KiB\n`,
);
