import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  AppManifestError,
  MANIFEST_FILE_MAX_BYTES,
  parseAppManifest,
  readAppManifest,
  type AppManifest,
} from './app-manifest.js';

type Files = Parameters<typeof parseAppManifest>[0];
const NODE = new Set(['package.json']);

function problemsOf(files: Files): string[] {
  try {
    parseAppManifest(files);
  } catch (err) {
    if (err instanceof AppManifestError) return err.problems;
    throw err;
  }
  throw new Error('expected an AppManifestError');
}

/** The one problem of a hox.toml on a node app with a web process. */
function hoxProblems(hoxToml: string, present: ReadonlySet<string> = NODE): string[] {
  return problemsOf({ procfile: 'web: node server.js\n', hoxToml, present });
}

const FULL_HOX_TOML = `
runtime = "node"
[build]
commands = ["npm run build"]
[run]
web = "node server.js"
release = "node migrate.js"
[run.workers]
mailer = "node worker.js"
[env]
NODE_ENV = "production"
[secrets]
generate = ["SESSION_SECRET"]
[healthcheck]
path = "/healthz"
status = 200
contains = "ok"
timeout = 60
[[addons]]
type = "postgres"
name = "crm"
cluster = "db"
[scale]
web = 2
[scale.workers]
mailer = 1
[storage]
paths = ["uploads"]
[cdn]
domains = ["crm.example.org"]
`;

describe('parseAppManifest: hox.toml', () => {
  it('reads every key of the documented example', () => {
    const manifest = parseAppManifest({ hoxToml: FULL_HOX_TOML, present: new Set(['package.json', 'hox.toml']) });
    expect(manifest).toEqual<AppManifest>({
      runtime: 'node',
      sources: ['hox.toml'],
      build: ['npm run build'],
      web: 'node server.js',
      staticRoot: null,
      workers: { mailer: 'node worker.js' },
      release: 'node migrate.js',
      env: { NODE_ENV: 'production' },
      secrets: ['SESSION_SECRET'],
      healthcheck: { path: '/healthz', status: 200, bodyContains: 'ok', timeoutS: 60 },
      addons: [{ kind: 'postgres', name: 'crm', cluster: 'db' }],
      scale: { web: 2, workers: { mailer: 1 } },
      storage: ['uploads'],
      cdn: { domains: ['crm.example.org'] },
    });
  });

  it('applies the documented defaults', () => {
    const manifest = parseAppManifest({ procfile: 'web: node server.js\nmailer: node w.js\n', present: NODE });
    expect(manifest).toMatchObject({
      build: [],
      release: null,
      env: {},
      secrets: [],
      addons: [],
      staticRoot: null,
      healthcheck: { path: '/', status: 200, bodyContains: null, timeoutS: 60 },
      scale: { web: 1, workers: { mailer: 1 } },
      storage: [],
      cdn: null,
    });
  });

  it('[cdn] domains: 1 to 10 host names, lower case, no wildcard, none twice', () => {
    expect(hoxProblems('[cdn]\n')).toEqual([
      'hox.toml: cdn.domains is required: the host names the CDN serves the app under',
    ]);
    expect(hoxProblems('[cdn]\ndomains = []\n')).toEqual([
      'hox.toml: cdn.domains must list 1 to 10 host names (got 0)',
    ]);
    expect(hoxProblems('[cdn]\ndomains = ["Crm.Example.org"]\n')[0]).toContain('"Crm.Example.org", not a host name');
    expect(hoxProblems('[cdn]\ndomains = ["*.example.org"]\n')[0]).toContain('not a host name');
    expect(hoxProblems('[cdn]\ndomains = ["a.test", "a.test"]\n')).toEqual([
      'hox.toml: cdn.domains lists a host name twice',
    ]);
    expect(hoxProblems('[cdn]\ndomains = ["a.test"]\nttl = 3\n')[0]).toContain("unknown key 'cdn.ttl'");
  });

  it('names an unknown key with its path and the key meant', () => {
    expect(hoxProblems('[run]\nwbe = "node a.js"\n')).toEqual([
      "hox.toml: unknown key 'run.wbe' (did you mean 'run.web'?)",
    ]);
    expect(hoxProblems('[healthcheck]\ntimeuot = 5\n')).toEqual([
      "hox.toml: unknown key 'healthcheck.timeuot' (did you mean 'healthcheck.timeout'?)",
    ]);
    expect(hoxProblems('Runtime = "node"\n')).toEqual(["hox.toml: unknown key 'Runtime' (did you mean 'runtime'?)"]);
    expect(hoxProblems('[[addons]]\ntype = "postgres"\nname = "crm"\nclustr = "db"\n')).toEqual([
      "hox.toml: unknown key 'addons[0].clustr' (did you mean 'addons[0].cluster'?)",
    ]);
  });

  it('suggests nothing when no key is close, and quotes odd key names', () => {
    expect(hoxProblems('database = "x"\n"a.b" = 1\n')).toEqual([
      "hox.toml: unknown key 'database'",
      `hox.toml: unknown key '"a.b"'`,
    ]);
  });

  it("points hop3.toml's key names written in hox.toml to hox.toml's", () => {
    expect(hoxProblems('[run]\nstart = "a"\nbefore-run = "b"\n[build]\ntoolchain = "node"\n')).toEqual([
      "hox.toml: unknown key 'build.toolchain' (did you mean 'runtime'?)",
      "hox.toml: unknown key 'run.start' (did you mean 'run.web'?)",
      "hox.toml: unknown key 'run.before-run' (did you mean 'run.release'?)",
    ]);
  });

  it('names wrong types with the key and the value', () => {
    expect(hoxProblems('runtime = 3\nrun = "node a.js"\naddons = { type = "postgres" }\n')).toEqual([
      'hox.toml: runtime must be a string (got 3)',
      'hox.toml: run must be a table (got "node a.js")',
      'hox.toml: addons must be an array of tables, written [[addons]] (got a table)',
    ]);
    expect(hoxProblems('[build]\ncommands = "npm run build"\n')).toEqual([
      'hox.toml: build.commands must be an array of strings (got "npm run build")',
    ]);
  });

  it('names the TOML type of a value that is not shown', () => {
    expect(hoxProblems('runtime = 1979-05-27\n[[run]]\nweb = "x"\n')).toEqual([
      'hox.toml: runtime must be a string (got a date-time)',
      'hox.toml: run must be a table (got an array)',
    ]);
  });

  it('refuses an unknown runtime', () => {
    expect(hoxProblems('runtime = "ruby"\n')).toEqual([
      'hox.toml: runtime must be one of node, python, static (got "ruby")',
    ]);
  });

  it('a bad runtime or web value is reported once, not again as a missing one', () => {
    expect(problemsOf({ hoxToml: 'runtime = "ruby"\n', present: new Set() })).toEqual([
      'hox.toml: runtime must be one of node, python, static (got "ruby")',
    ]);
    expect(problemsOf({ hoxToml: '[run]\nweb = 3\n', present: new Set(['app.py']) })).toEqual([
      'hox.toml: run.web must be a string (got 3)',
    ]);
  });

  it('refuses empty build commands, naming their index', () => {
    expect(hoxProblems('[build]\ncommands = ["npm run build", "  "]\n')).toEqual([
      'hox.toml: build.commands [1] must not be empty',
    ]);
  });

  it('[run] web and release override the Procfile', () => {
    const manifest = parseAppManifest({
      procfile: 'web: node old.js\nrelease: node old-migrate.js\n',
      hoxToml: '[run]\nweb = "node new.js"\nrelease = "node migrate.js"\n',
      present: NODE,
    });
    expect(manifest).toMatchObject({ web: 'node new.js', release: 'node migrate.js' });
    expect(manifest.sources).toEqual(['Procfile', 'hox.toml']);
  });

  it('merges workers from both files; the same name in both is an error', () => {
    const manifest = parseAppManifest({
      procfile: 'web: a\nmailer: b\n',
      hoxToml: '[run.workers]\nindexer = "c"\n',
      present: NODE,
    });
    expect(manifest.workers).toEqual({ mailer: 'b', indexer: 'c' });
    expect(manifest.scale.workers).toEqual({ mailer: 1, indexer: 1 });
    expect(
      problemsOf({ procfile: 'web: a\n\nmailer: b\n', hoxToml: '[run.workers]\nmailer = "c"\n', present: NODE }),
    ).toEqual(['hox.toml: run.workers.mailer is also defined in the Procfile (Procfile line 3): define it once']);
  });

  it('refuses bad worker names, web/release as workers and empty commands', () => {
    expect(hoxProblems('[run.workers]\nMailer = "a"\nweb = "b"\nrelease = "c"\nempty = ""\nn = 1\n')).toEqual([
      'hox.toml: run.workers.Mailer is not a valid worker name (want [a-z][a-z0-9_-]{0,30})',
      'hox.toml: run.workers.web is not a worker: use run.web',
      'hox.toml: run.workers.release is not a worker: use run.release',
      'hox.toml: run.workers.empty must not be empty',
      'hox.toml: run.workers.n must be a string (got 1)',
    ]);
  });

  it('takes env values as strings only, naming the key of any other value', () => {
    expect(hoxProblems('[env]\nWORKERS = 4\nDEBUG = false\nLIST = ["a"]\nok = "x"\n')).toEqual([
      'hox.toml: env.WORKERS must be a string (got 4: write WORKERS = "4")',
      'hox.toml: env.DEBUG must be a string (got false: write DEBUG = "false")',
      'hox.toml: env.LIST must be a string (got an array)',
    ]);
  });

  it.each(['PORT', 'HOST', 'DATABASE_URL', 'PGPASSWORD', 'PG', 'HOX_NODE'])(
    'refuses the reserved env name %s',
    (name) => {
      const problems = hoxProblems(`[env]\n${name} = "x"\n`);
      expect(problems).toEqual([
        `hox.toml: env.${name} is reserved (PORT, HOST, DATABASE_URL, PG* and HOX_* are set by the platform)`,
      ]);
    },
  );

  it('accepts names that only look reserved, and refuses invalid names', () => {
    const manifest = parseAppManifest({
      procfile: 'web: a\n',
      hoxToml: '[env]\nport = "1"\nHOSTNAME = "h"\nAPG = "2"\n_X1 = ""\n',
      present: NODE,
    });
    expect(manifest.env).toEqual({ port: '1', HOSTNAME: 'h', APG: '2', _X1: '' });
    expect(hoxProblems('[env]\n1ABC = "x"\n"A-B" = "y"\n')).toEqual([
      'hox.toml: env.1ABC is not a valid variable name (want [A-Za-z_][A-Za-z0-9_]*)',
      'hox.toml: env.A-B is not a valid variable name (want [A-Za-z_][A-Za-z0-9_]*)',
    ]);
  });

  it('checks generated secret names', () => {
    expect(
      hoxProblems('[env]\nAPI_KEY = "x"\n[secrets]\ngenerate = ["session_secret", "PGPASS", "A", "A", "API_KEY"]\n'),
    ).toEqual([
      "hox.toml: secrets.generate 'session_secret' is not a valid secret name (want [A-Z_][A-Z0-9_]*)",
      "hox.toml: secrets.generate 'PGPASS' is reserved (PORT, HOST, DATABASE_URL, PG* and HOX_* are set by the platform)",
      "hox.toml: secrets.generate 'A' is listed twice",
      "hox.toml: secrets.generate 'API_KEY' is also set in [env]: a variable is either set or generated",
    ]);
  });

  it('checks the health check', () => {
    expect(hoxProblems('[healthcheck]\npath = "healthz"\nstatus = 99\ncontains = ""\ntimeout = 0\n')).toEqual([
      `hox.toml: healthcheck.path must start with '/' and contain no spaces (got "healthz")`,
      'hox.toml: healthcheck.status must be an integer from 100 to 599 (got 99)',
      'hox.toml: healthcheck.contains must not be empty (leave it out to check the status only)',
      'hox.toml: healthcheck.timeout must be an integer from 1 to 600 (got 0)',
    ]);
    expect(hoxProblems('[healthcheck]\ntimeout = 601\nstatus = 200.5\n')).toEqual([
      'hox.toml: healthcheck.status must be an integer from 100 to 599 (got 200.5)',
      'hox.toml: healthcheck.timeout must be an integer from 1 to 600 (got 601)',
    ]);
    const manifest = parseAppManifest({
      procfile: 'web: a\n',
      hoxToml: '[healthcheck]\ntimeout = 600\nstatus = 204\n',
      present: NODE,
    });
    expect(manifest.healthcheck).toEqual({ path: '/', status: 204, bodyContains: null, timeoutS: 600 });
  });

  it('checks the postgres addon', () => {
    expect(
      hoxProblems(
        '[[addons]]\ntype = "mysql"\nname = "crm-db"\ncluster = ""\n[[addons]]\nname = "x"\n[[addons]]\ntype = "postgres"\n',
      ),
    ).toEqual([
      'hox.toml: addons: at most 1 postgres addon is supported for now (found 3)',
      'hox.toml: addons[0].type = "mysql" is not supported by hyper_edge (only "postgres")',
      'hox.toml: addons[0].name "crm-db" is not a database name (want [a-z][a-z0-9_]{0,62})',
      'hox.toml: addons[0].cluster must be an instance tree title of 1 to 64 characters (got "")',
      'hox.toml: addons[1].type is required (type = "postgres")',
      'hox.toml: addons[2].name is required: the database name, e.g. name = "crm"',
    ]);
    const manifest = parseAppManifest({
      procfile: 'web: a\n',
      hoxToml: '[[addons]]\ntype = "postgres"\nname = "crm"\n',
      present: NODE,
    });
    expect(manifest.addons).toEqual([{ kind: 'postgres', name: 'crm', cluster: null }]);
  });

  it('checks scale: ranges, and worker names that are workers', () => {
    expect(
      problemsOf({
        procfile: 'web: a\nmailer: b\n',
        hoxToml: '[scale]\nweb = 21\n[scale.workers]\nmailer = 9\nmaler = 1\n',
        present: NODE,
      }),
    ).toEqual([
      'hox.toml: scale.web must be an integer from 1 to 20 (got 21)',
      'hox.toml: scale.workers.mailer must be an integer from 0 to 8 (got 9)',
      "hox.toml: scale.workers.maler: 'maler' is not a worker",
    ]);
    expect(hoxProblems('[scale]\nweb = 0\n')).toEqual(['hox.toml: scale.web must be an integer from 1 to 20 (got 0)']);
    const manifest = parseAppManifest({
      procfile: 'web: a\nmailer: b\nindexer: c\n',
      hoxToml: '[scale]\nweb = 20\n[scale.workers]\nindexer = 0\n',
      present: NODE,
    });
    expect(manifest.scale).toEqual({ web: 20, workers: { mailer: 1, indexer: 0 } });
  });

  it('refuses a Procfile problem and hox.toml problems together', () => {
    expect(
      problemsOf({ procfile: 'web: a\nweb: b\n', hoxToml: '[run]\nwbe = "x"\n[env]\nPORT = "1"\n', present: NODE }),
    ).toEqual([
      "Procfile line 2: duplicate process 'web' (first defined on line 1)",
      "hox.toml: unknown key 'run.wbe' (did you mean 'run.web'?)",
      'hox.toml: env.PORT is reserved (PORT, HOST, DATABASE_URL, PG* and HOX_* are set by the platform)',
    ]);
  });

  it('a TOML syntax error is one problem naming the line and column', () => {
    expect(problemsOf({ procfile: 'web: a\n', hoxToml: '[run]\nweb = \n', present: NODE })).toEqual([
      'hox.toml: invalid TOML at line 2, column 7: invalid value',
    ]);
    expect(problemsOf({ hoxToml: 'a = 1\na = 2\n', present: NODE })[0]).toMatch(/^hox\.toml: invalid TOML at line 2/);
  });

  it('refuses hox.toml and hop3.toml together', () => {
    expect(problemsOf({ hoxToml: '', hop3Toml: '', present: NODE })).toEqual([
      'both hox.toml and hop3.toml are present: keep one of them',
    ]);
  });

  it('AppManifestError carries the problems, one per line in the message', () => {
    try {
      parseAppManifest({ procfile: 'oops\nWeb: a\n', present: NODE });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(Error);
      expect(err).toBeInstanceOf(AppManifestError);
      const error = err as AppManifestError;
      expect(error.name).toBe('AppManifestError');
      expect(error.problems).toHaveLength(2);
      expect(error.message).toBe(error.problems.join('\n'));
    }
  });
});

describe('parseAppManifest: runtime detection', () => {
  it('package.json → node, with npm start as the default web command', () => {
    const manifest = parseAppManifest({ present: new Set(['package.json', 'server.js']) });
    expect(manifest).toMatchObject({ runtime: 'node', web: 'npm start', sources: [] });
    expect(parseAppManifest({ procfile: 'web: node app.js\n', present: NODE }).web).toBe('node app.js');
  });

  it('node named without package.json needs a web command', () => {
    expect(problemsOf({ hoxToml: 'runtime = "node"\n', present: new Set(['server.js']) })).toEqual([
      'no web process: add `web: ...` to the Procfile or [run] web to hox.toml',
    ]);
    const manifest = parseAppManifest({ hoxToml: 'runtime = "node"\n[run]\nweb = "node s.js"\n', present: new Set() });
    expect(manifest).toMatchObject({ runtime: 'node', web: 'node s.js' });
  });

  it.each(['requirements.txt', 'pyproject.toml', 'app.py', 'wsgi.py', 'manage.py'])('%s → python', (marker) => {
    const manifest = parseAppManifest({ procfile: 'web: gunicorn app:app\n', present: new Set([marker]) });
    expect(manifest).toMatchObject({ runtime: 'python', web: 'gunicorn app:app' });
  });

  it('python without a web command is an error', () => {
    expect(problemsOf({ procfile: 'worker: celery\n', present: new Set(['requirements.txt']) })).toEqual([
      'no web process: add `web: ...` to the Procfile or [run] web to hox.toml',
    ]);
  });

  it('package.json wins over Python files; an explicit runtime wins over both', () => {
    const both = new Set(['package.json', 'requirements.txt']);
    expect(parseAppManifest({ procfile: 'web: a\n', present: both }).runtime).toBe('node');
    expect(parseAppManifest({ procfile: 'web: a\n', hoxToml: 'runtime = "python"\n', present: both }).runtime).toBe(
      'python',
    );
  });

  it('only index.html → a static site serving the app directory', () => {
    const manifest = parseAppManifest({ present: new Set(['index.html', 'style.css']) });
    expect(manifest).toMatchObject({ runtime: 'static', web: null, staticRoot: '.', workers: {}, release: null });
  });

  it('[static] root makes a static site even without index.html (a built directory)', () => {
    const manifest = parseAppManifest({
      hoxToml: '[build]\ncommands = ["./generate.sh"]\n[static]\nroot = "./dist/"\n',
      present: new Set(['generate.sh']),
    });
    expect(manifest).toMatchObject({ runtime: 'static', staticRoot: 'dist', build: ['./generate.sh'], web: null });
  });

  it('a static site built with npm names its runtime', () => {
    const manifest = parseAppManifest({
      hoxToml: 'runtime = "static"\n[build]\ncommands = ["npm ci", "npm run build"]\n[static]\nroot = "dist"\n',
      present: NODE,
    });
    expect(manifest).toMatchObject({ runtime: 'static', staticRoot: 'dist', web: null });
    expect(problemsOf({ hoxToml: '[static]\nroot = "dist"\n', present: NODE })).toEqual([
      'hox.toml: static.root is only for static sites (the runtime is node, detected)',
    ]);
  });

  it('index.html with a web process cannot be told apart', () => {
    expect(problemsOf({ procfile: '\nweb: ./server\n', present: new Set(['index.html']) })).toEqual([
      'cannot detect the runtime: index.html says static site but a web process is declared (Procfile line 2) ' +
        'and there is no package.json or Python file; set runtime in hox.toml',
    ]);
  });

  it('nothing to detect from is an error naming what was looked for', () => {
    const problems = problemsOf({ present: new Set(['README.md', 'main.go']) });
    expect(problems).toHaveLength(1);
    for (const name of ['package.json', 'requirements.txt', 'pyproject.toml', 'app.py', 'wsgi.py', 'manage.py']) {
      expect(problems[0]).toContain(name);
    }
    expect(problems[0]).toMatch(/^cannot detect the runtime: .*index\.html.*; set runtime in hox\.toml$/);
  });

  it('a static site runs no process and has no addon', () => {
    expect(
      problemsOf({
        procfile: 'web: a\nrelease: b\n',
        hoxToml:
          'runtime = "static"\n[run.workers]\nsync = "c"\n[[addons]]\ntype = "postgres"\nname = "x"\n[scale.workers]\nsync = 1\n',
        present: new Set(['index.html']),
      }),
    ).toEqual([
      'static site: a web process is not allowed (Procfile line 1)',
      'static site: a release command is not allowed (Procfile line 2)',
      "static site: worker 'sync' is not allowed (hox.toml run.workers.sync)",
      'static site: an addon is not allowed (hox.toml addons)',
    ]);
  });

  it('checks the static root', () => {
    const present = new Set(['index.html']);
    expect(problemsOf({ hoxToml: '[static]\nroot = "../site"\n', present })).toEqual([
      `hox.toml: static.root must stay inside the app: no '..' (got "../site")`,
    ]);
    expect(problemsOf({ hoxToml: '[static]\nroot = "/var/www"\n', present })).toEqual([
      'hox.toml: static.root must be relative to the app (got "/var/www")',
    ]);
    expect(problemsOf({ hoxToml: '[static]\nroot = "public"\nindex = "x"\n', present })).toEqual([
      "hox.toml: unknown key 'static.index'",
    ]);
    expect(parseAppManifest({ hoxToml: '[static]\nroot = "./"\n', present }).staticRoot).toBe('.');
    expect(parseAppManifest({ hoxToml: '[static]\nroot = "a/./b//"\n', present }).staticRoot).toBe('a/b');
  });
});

describe('docs/app-manifest.md', () => {
  const doc = readFileSync(new URL('../../../../docs/app-manifest.md', import.meta.url), 'utf8');
  const blocks = (fence: string): string[] =>
    [...doc.matchAll(new RegExp(`^\`\`\`${fence}\n([^]*?)^\`\`\`$`, 'gm'))].map((m) => m[1] ?? '');

  it('its hox.toml examples read as documented', () => {
    const [full, staticRoot, built, hop3] = blocks('toml');
    expect(parseAppManifest({ hoxToml: full!, present: NODE })).toEqual(
      parseAppManifest({ hoxToml: FULL_HOX_TOML, present: NODE }),
    );
    expect(parseAppManifest({ hoxToml: staticRoot!, present: new Set(['index.html']) })).toMatchObject({
      runtime: 'static',
      staticRoot: 'public',
    });
    expect(parseAppManifest({ hoxToml: built!, present: NODE })).toMatchObject({
      runtime: 'static',
      staticRoot: 'dist',
    });
    expect(parseAppManifest({ hop3Toml: hop3!, present: new Set(['manage.py']) })).toMatchObject({
      runtime: 'python',
      release: 'python manage.py migrate --noinput',
      addons: [{ kind: 'postgres', name: 'django_blog', cluster: null }],
    });
  });

  it('its Procfile example reads as documented', () => {
    const procfile = blocks('').find((block) => block.startsWith('# web:'));
    expect(parseAppManifest({ procfile: procfile!, present: NODE })).toMatchObject({
      web: 'node server.js',
      release: 'node migrate.js',
      workers: { mailer: 'node worker.js' },
    });
  });
});

describe('readAppManifest', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  function appDir(files: Record<string, string>): string {
    const dir = mkdtempSync(join(tmpdir(), 'hox-manifest-'));
    dirs.push(dir);
    for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
    return dir;
  }

  async function readProblems(dir: string): Promise<string[]> {
    const error = await readAppManifest(dir).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(AppManifestError);
    return (error as AppManifestError).problems;
  }

  it('reads the Procfile, hox.toml and the listing', async () => {
    const dir = appDir({
      'package.json': '{}',
      Procfile: 'web: node server.js\nmailer: node worker.js\n',
      'hox.toml': '[env]\nNODE_ENV = "production"\n',
    });
    const manifest = await readAppManifest(dir);
    expect(manifest).toMatchObject({
      runtime: 'node',
      sources: ['Procfile', 'hox.toml'],
      web: 'node server.js',
      workers: { mailer: 'node worker.js' },
      env: { NODE_ENV: 'production' },
    });
  });

  it('reads hop3.toml', async () => {
    const dir = appDir({ 'app.py': '', 'hop3.toml': '[run]\nstart = "gunicorn app:app"\n' });
    expect(await readAppManifest(dir)).toMatchObject({
      runtime: 'python',
      sources: ['hop3.toml'],
      web: 'gunicorn app:app',
    });
  });

  it('works from the listing alone', async () => {
    expect(await readAppManifest(appDir({ 'index.html': '<p>hi</p>' }))).toMatchObject({
      runtime: 'static',
      sources: [],
    });
  });

  it('refuses a symlinked hox.toml without following it', async () => {
    const dir = appDir({ 'package.json': '{}', 'real.toml': '[run]\nweb = "node a.js"\n' });
    symlinkSync(join(dir, 'real.toml'), join(dir, 'hox.toml'));
    expect(await readProblems(dir)).toEqual(['hox.toml: refused: it is a symbolic link (only regular files are read)']);
  });

  it('refuses a file over 64 KiB and reads one of exactly 64 KiB', async () => {
    const line = 'web: node server.js\n';
    const exact = line + '#'.repeat(MANIFEST_FILE_MAX_BYTES - line.length - 1) + '\n';
    expect(Buffer.byteLength(exact)).toBe(65536);
    expect((await readAppManifest(appDir({ 'package.json': '{}', Procfile: exact }))).web).toBe('node server.js');
    const over = appDir({ 'package.json': '{}', Procfile: `${exact}#` });
    expect(await readProblems(over)).toEqual(['Procfile: refused: 65537 bytes, more than the 65536 (64 KiB) allowed']);
  });

  it('refuses what is not a regular file: a directory, a FIFO (without hanging)', async () => {
    const dir = appDir({ 'package.json': '{}' });
    mkdirSync(join(dir, 'Procfile'));
    execFileSync('mkfifo', [join(dir, 'hox.toml')]);
    expect(await readProblems(dir)).toEqual([
      'Procfile: refused: not a regular file',
      'hox.toml: refused: not a regular file',
    ]);
  });

  it('refuses a file that is not UTF-8', async () => {
    const dir = appDir({ 'package.json': '{}' });
    writeFileSync(join(dir, 'Procfile'), Buffer.from([0x77, 0x65, 0x62, 0x3a, 0x20, 0xff, 0xfe, 0x0a]));
    expect(await readProblems(dir)).toEqual(['Procfile: refused: not valid UTF-8']);
  });

  it('a missing directory is an AppManifestError with the cause', async () => {
    const missing = join(tmpdir(), 'hox-manifest-does-not-exist', 'app');
    const error = await readAppManifest(missing).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(AppManifestError);
    expect((error as AppManifestError).message).toContain(`cannot list the app directory '${missing}'`);
    expect((error as AppManifestError).cause).toMatchObject({ code: 'ENOENT' });
  });

  it('parse problems come through as from parseAppManifest', async () => {
    const dir = appDir({ 'package.json': '{}', 'hox.toml': '[run]\nwbe = "x"\n' });
    expect(await readProblems(dir)).toEqual(["hox.toml: unknown key 'run.wbe' (did you mean 'run.web'?)"]);
  });
});

describe('parseAppManifest: [storage]', () => {
  it('normalises the paths kept across releases', () => {
    const manifest = parseAppManifest({
      procfile: 'web: node server.js\n',
      hoxToml: '[storage]\npaths = ["./uploads/", "data/cache"]\n',
      present: NODE,
    });
    expect(manifest.storage).toEqual(['uploads', 'data/cache']);
  });

  it('names each bad path, and refuses storage on a static site', () => {
    expect(
      hoxProblems(
        '[storage]\npaths = ["/srv/data", "../up", ".", "node_modules/x", "data", "data/sub", "data"]\nsize = 3\n',
      ),
    ).toEqual([
      'hox.toml: storage.paths [0] must be relative to the app (got "/srv/data")',
      'hox.toml: storage.paths [1] must stay inside the app: no \'..\' (got "../up")',
      'hox.toml: storage.paths [2] must name a directory inside the app, not the app itself',
      "hox.toml: storage.paths [3] 'node_modules' is written by the platform's build",
      "hox.toml: storage.paths [5] 'data/sub' overlaps another path of the list",
      "hox.toml: storage.paths [6] 'data' overlaps another path of the list",
      "hox.toml: unknown key 'storage.size'",
    ]);
    expect(
      problemsOf({ hoxToml: 'runtime = "static"\n[storage]\npaths = ["files"]\n', present: new Set(['index.html']) }),
    ).toEqual(['static site: persistent storage is not allowed (hox.toml storage.paths)']);
  });
});
