// Bundles the web console (src/console, Preact + uPlot, see docs/console.md) with esbuild into dist/console: one
// script and one style sheet named after their content (served as immutable by the master), and the index.html that
// loads them. Run by `npm run build`; nothing is fetched from outside at run time.
//
//   node scripts/bundle-console.mjs              # dist/console
//   node scripts/bundle-console.mjs --outdir D   # D (tests build their own copy from the sources)
import { build } from 'esbuild';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const ROOT = resolve(import.meta.dirname, '..');
const { values } = parseArgs({ options: { outdir: { type: 'string', default: join(ROOT, 'dist', 'console') } } });
const outdir = resolve(values.outdir);

mkdirSync(outdir, { recursive: true });
for (const name of readdirSync(outdir)) rmSync(join(outdir, name), { force: true, recursive: true });

const result = await build({
  entryPoints: [join(ROOT, 'src', 'console', 'main.tsx')],
  outdir,
  entryNames: 'console-[hash]',
  bundle: true,
  minify: true,
  format: 'esm',
  platform: 'browser',
  target: ['chrome109', 'firefox115', 'safari16'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  tsconfig: join(ROOT, 'src', 'console', 'tsconfig.json'),
  sourcemap: 'linked',
  metafile: true,
  logLevel: 'warning',
  legalComments: 'linked',
});
const outputs = Object.keys(result.metafile.outputs);
const script = outputs.find((name) => name.endsWith('.js'));
const style = outputs.find((name) => name.endsWith('.css'));
if (script === undefined || style === undefined) throw new Error('the console bundle has no script or no style sheet');

// The page is static: the script reads everything else through the API.
const index = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>HyperOpenX console</title>
<link rel="stylesheet" href="/console/${basename(style)}">
<script type="module" src="/console/${basename(script)}"></script>
</head>
<body>
<div id="app"><p class="boot">Loading the console…</p></div>
<noscript>The HyperOpenX console needs JavaScript. The hox command line does everything it does.</noscript>
</body>
</html>
`;
writeFileSync(join(outdir, 'index.html'), index);
const bytes = Object.values(result.metafile.outputs).reduce((sum, output) => sum + output.bytes, 0);
process.stdout.write(`bundled the web console: ${relative(ROOT, outdir)}, ${Math.round(bytes / 1024)} KiB\n`);
