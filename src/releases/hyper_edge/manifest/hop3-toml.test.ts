/**
 * hop3.toml mapped onto the app manifest. The files are the examples of
 * Hop3's own documentation (docs/src/reference/config.md and the
 * "hop3.toml reference" blog post of abilian/hop3), trimmed where marked.
 */
import { describe, expect, it } from 'vitest';
import { AppManifestError, parseAppManifest, type AppManifest } from './app-manifest.js';

function problemsOf(hop3Toml: string, present: ReadonlySet<string>, procfile?: string): string[] {
  try {
    parseAppManifest({ hop3Toml, present, ...(procfile === undefined ? {} : { procfile }) });
  } catch (err) {
    if (err instanceof AppManifestError) return err.problems;
    throw err;
  }
  throw new Error('expected an AppManifestError');
}

const PYTHON = new Set(['app.py', 'requirements.txt', 'hop3.toml']);
const NODE = new Set(['package.json', 'hop3.toml']);

describe('hop3.toml: examples from Hop3’s documentation', () => {
  it('the minimal configuration', () => {
    const manifest = parseAppManifest({
      hop3Toml: '[metadata]\nid = "my-app"\n\n[run]\nstart = "python app.py"\n',
      present: PYTHON,
    });
    expect(manifest).toMatchObject({ runtime: 'python', sources: ['hop3.toml'], web: 'python app.py', release: null });
  });

  it('the Python/Django application', () => {
    const manifest = parseAppManifest({
      hop3Toml: `
[metadata]
id = "django-blog"
version = "1.0.0"

[build]
before-build = "pip install -r requirements.txt"

[run]
start = "gunicorn blog.wsgi:application --workers 4"
before-run = "python manage.py migrate --noinput"

[env]
DJANGO_SETTINGS_MODULE = "blog.settings.production"

[[addons]]
type = "postgres"
`,
      present: new Set(['manage.py', 'requirements.txt', 'blog']),
    });
    expect(manifest).toEqual<AppManifest>({
      runtime: 'python',
      sources: ['hop3.toml'],
      build: ['pip install -r requirements.txt'],
      web: 'gunicorn blog.wsgi:application --workers 4',
      staticRoot: null,
      workers: {},
      release: 'python manage.py migrate --noinput',
      env: { DJANGO_SETTINGS_MODULE: 'blog.settings.production' },
      secrets: [],
      healthcheck: { path: '/', status: 200, bodyContains: null, timeoutS: 60 },
      // Hop3 names the addon after the app: here that is the database name.
      addons: [{ kind: 'postgres', name: 'django_blog', cluster: null }],
      scale: { web: 1, workers: {} },
      storage: [],
      cdn: null,
    });
  });

  it('the Node.js/Express application: build steps map, system packages and [port] are refused', () => {
    const toml = `
[metadata]
id = "express-api"
version = "1.0.0"

[build]
before-build = ["npm ci", "npm run build"]
test = "npm test"

[run]
start = "node dist/server.js"
packages = ["nodejs"]

[port]
web = 3000

[[addons]]
type = "postgres"
`;
    expect(problemsOf(toml, NODE)).toEqual([
      "hop3.toml: key 'run.packages' is not supported by hyper_edge (system packages cannot be installed per app)",
      "hop3.toml: key 'port' is not supported by hyper_edge (the web process listens on $PORT, chosen by the platform)",
    ]);
    const supported = toml.replace('packages = ["nodejs"]\n', '').replace('[port]\nweb = 3000\n', '');
    expect(parseAppManifest({ hop3Toml: supported, present: NODE })).toMatchObject({
      runtime: 'node',
      build: ['npm ci', 'npm run build', 'npm test'],
      web: 'node dist/server.js',
      addons: [{ kind: 'postgres', name: 'express_api', cluster: null }],
    });
  });

  it('the basic shape of the blog post: all maps but the [static] URL mappings', () => {
    const toml = `
[metadata]
id = "myapp"

[build]
toolchain = "python"

[run]
start = "gunicorn app:app"
before-run = ["python manage.py migrate"]

[env]
DEBUG = "false"

[static]
"/static" = "static/"

[healthcheck]
path = "/health"

[[addons]]
type = "postgres"
`;
    expect(problemsOf(toml, PYTHON)).toEqual([
      "hop3.toml: key 'static' is not supported by hyper_edge (URL-path mappings are not served; a static site sets build.static-dir)",
    ]);
    const manifest = parseAppManifest({
      hop3Toml: toml.replace('[static]\n"/static" = "static/"\n', ''),
      present: PYTHON,
    });
    expect(manifest).toMatchObject({
      runtime: 'python',
      web: 'gunicorn app:app',
      release: 'python manage.py migrate',
      env: { DEBUG: 'false' },
      healthcheck: { path: '/health', timeoutS: 60 },
      addons: [{ kind: 'postgres', name: 'myapp', cluster: null }],
    });
  });

  it('the complete Django application with Celery workers: every unsupported key is named at once', () => {
    const toml = `
[metadata]
id = "django-app"
version = "2.0.0"
title = "My Django App"

[build]
toolchain = "python"
before-build = "pip install -r requirements.txt"
packages = ["libpq-dev"]

[run]
start = "gunicorn myapp.wsgi:application -b 0.0.0.0:$PORT"
before-run = [
    "python manage.py migrate --noinput",
    "python manage.py collectstatic --noinput",
]
packages = ["libpq5"]

[run.workers]
worker = "celery -A myapp worker -l info"
beat = "celery -A myapp beat -l info"

[env]
DJANGO_SETTINGS_MODULE = "myapp.settings.production"
DEBUG = "false"
HOST_NAME = "myapp.example.com"

[static]
"/static" = "staticfiles/"
"/media" = "media/"

[healthcheck]
path = "/health/"
timeout = 5
retries = 3

[[addons]]
type = "postgres"

[[addons]]
type = "redis"

[backup]
paths = ["media/"]
`;
    const problems = problemsOf(toml, PYTHON);
    for (const key of [
      'build.packages',
      'run.packages',
      'env.HOST_NAME',
      'healthcheck.timeout',
      'healthcheck.retries',
      'static',
      'backup',
    ]) {
      expect(problems).toContain(`hop3.toml: key '${key}' is not supported by hyper_edge (${reason(problems, key)})`);
    }
    expect(problems).toContain('hop3.toml: addons: at most 1 postgres addon is supported for now (found 2)');
    expect(problems).toContain('hop3.toml: addons[1].type = "redis" is not supported by hyper_edge (only "postgres")');
    expect(problems).toHaveLength(9);
  });

  it("the blog's [run] section: start-timeout and healthcheck map, healthcheck-timeout is refused", () => {
    const run = `
[run]
start = "gunicorn app:app -b 0.0.0.0:$PORT"
before-run = ["python manage.py migrate", "python manage.py collectstatic"]
start-timeout = 30
healthcheck = "/health"
healthcheck-timeout = 5

[run.workers]
worker = "celery -A app worker"
scheduler = "celery -A app beat"
`;
    expect(problemsOf(run, PYTHON)).toEqual([
      "hop3.toml: key 'run.healthcheck-timeout' is not supported by hyper_edge (the wait for a new version is run.start-timeout)",
    ]);
    const manifest = parseAppManifest({ hop3Toml: run.replace('healthcheck-timeout = 5\n', ''), present: PYTHON });
    expect(manifest).toMatchObject({
      release: 'python manage.py migrate && python manage.py collectstatic',
      workers: { worker: 'celery -A app worker', scheduler: 'celery -A app beat' },
      healthcheck: { path: '/health', timeoutS: 30 },
      scale: { web: 1, workers: { worker: 1, scheduler: 1 } },
    });
  });

  it('generated secrets: only { generate = "urlsafe" } is honoured', () => {
    const reference = `
[run]
start = "bin/server"
[env]
SECRET_KEY_BASE = { generate = "hex", length = 64 }
APP_KEY         = { generate = "base64", length = 32, prefix = "base64:" }
ADMIN_PASSWORD  = { generate = "password", length = 24, display = true }
`;
    expect(problemsOf(reference, PYTHON)).toEqual([
      'hop3.toml: env.SECRET_KEY_BASE.generate = "hex" is not supported by hyper_edge (its generated secrets are "urlsafe")',
      "hop3.toml: key 'env.SECRET_KEY_BASE.length' is not supported by hyper_edge (generated secrets have a fixed format)",
      'hop3.toml: env.APP_KEY.generate = "base64" is not supported by hyper_edge (its generated secrets are "urlsafe")',
      "hop3.toml: key 'env.APP_KEY.length' is not supported by hyper_edge (generated secrets have a fixed format)",
      "hop3.toml: key 'env.APP_KEY.prefix' is not supported by hyper_edge (generated secrets have a fixed format)",
      'hop3.toml: env.ADMIN_PASSWORD.generate = "password" is not supported by hyper_edge (its generated secrets are "urlsafe")',
      "hop3.toml: key 'env.ADMIN_PASSWORD.length' is not supported by hyper_edge (generated secrets have a fixed format)",
      "hop3.toml: key 'env.ADMIN_PASSWORD.display' is not supported by hyper_edge (generated values are never shown)",
    ]);
    const manifest = parseAppManifest({
      hop3Toml: '[run]\nstart = "bin/server"\n[env]\nDEBUG = "0"\nSECRET_KEY = { generate = "urlsafe" }\n',
      present: PYTHON,
    });
    expect(manifest).toMatchObject({ env: { DEBUG: '0' }, secrets: ['SECRET_KEY'] });
  });

  it("Hop3's own docs site: a static site; HOST_NAME is refused", () => {
    const toml = `
[metadata]
id = "hop3-docs"
title = "Hop3 Documentation"
description = "Official documentation for Hop3 PaaS"

[build]
toolchain = "static"

[env]
HOST_NAME = "hop3.cloud"
`;
    expect(problemsOf(toml, new Set(['public']))).toEqual([
      "hop3.toml: key 'env.HOST_NAME' is not supported by hyper_edge (hostnames are not set from the app's files)",
    ]);
  });

  it('the old Express example: [[provider]], [port] and a PORT in [env] are each named', () => {
    const problems = problemsOf(
      `
[metadata]
id = "my-express-app"
author = "Your Name <you@example.com>"
[run]
start = "node dist/server.js"
[env]
NODE_ENV = "production"
PORT = "3000"
[port]
web = 3000
[healthcheck]
path = "/health"
interval = 60
[[provider]]
name = "postgres"
plan = "standard"
`,
      NODE,
    );
    expect(problems).toEqual([
      'hop3.toml: env.PORT is reserved (PORT, HOST, DATABASE_URL, PG* and HOX_* are set by the platform)',
      "hop3.toml: key 'healthcheck.interval' is not supported by hyper_edge (the platform probes a new version until run.start-timeout)",
      "hop3.toml: key 'port' is not supported by hyper_edge (the web process listens on $PORT, chosen by the platform)",
      `hop3.toml: key 'provider' is not supported by hyper_edge (the old name of [[addons]]: use [[addons]] with type = "postgres")`,
    ]);
  });
});

/** The reason in the problem about `key`, so the test checks the wording around it. */
function reason(problems: string[], key: string): string {
  const found = problems.find((p) => p.startsWith(`hop3.toml: key '${key}' `));
  return found?.match(/\((.*)\)$/)?.[1] ?? 'missing';
}

describe('hop3.toml: mapping rules', () => {
  it('a command array of start is one command joined with &&', () => {
    const manifest = parseAppManifest({ hop3Toml: '[run]\nstart = ["cd web", "node s.js"]\n', present: NODE });
    expect(manifest.web).toBe('cd web && node s.js');
  });

  it('build commands run in the order before-build, build, after-build, test', () => {
    const manifest = parseAppManifest({
      hop3Toml: '[build]\ntest = "t"\nafter-build = ["a1", "a2"]\nbuild = "b"\nbefore-build = "bb"\n',
      present: NODE,
    });
    expect(manifest.build).toEqual(['bb', 'b', 'a1', 'a2', 't']);
  });

  it('builder "local" and "auto" are accepted, docker and nix are refused', () => {
    expect(parseAppManifest({ hop3Toml: '[build]\nbuilder = "local"\n', present: NODE }).web).toBe('npm start');
    expect(parseAppManifest({ hop3Toml: '[build]\nbuilder = "auto"\n', present: NODE }).runtime).toBe('node');
    expect(problemsOf('[build]\nbuilder = "docker"\n', NODE)).toEqual([
      'hop3.toml: build.builder = "docker" is not supported by hyper_edge (apps are built on the node: "local" or "auto")',
    ]);
    expect(problemsOf('[build]\nbuilder = "podman"\n', NODE)).toEqual([
      'hop3.toml: build.builder must be "auto" or "local" (got "podman")',
    ]);
  });

  it('toolchain gives the runtime; toolchains hyper_edge lacks are refused', () => {
    const manifest = parseAppManifest({
      hop3Toml: '[build]\ntoolchain = "node"\n[run]\nstart = "node s.js"\n',
      present: new Set(['requirements.txt']),
    });
    expect(manifest.runtime).toBe('node');
    expect(problemsOf('[build]\ntoolchain = "ruby"\n[run]\nstart = "rackup"\n', new Set(['Gemfile']))).toEqual([
      'hop3.toml: build.toolchain = "ruby" is not supported by hyper_edge (only node, python, static)',
    ]);
  });

  it.each([
    ['packages', 'system packages cannot be installed per app'],
    ['pip-install', 'list Python packages in requirements.txt or pyproject.toml'],
    ['node-version', "the node's Node.js runs every app"],
    ['ignore', 'the whole source directory is deployed'],
  ])('build.%s is refused by name', (key, why) => {
    expect(problemsOf(`[build]\n${key} = ["x"]\n[run]\nstart = "a"\n`, PYTHON)).toEqual([
      `hop3.toml: key 'build.${key}' is not supported by hyper_edge (${why})`,
    ]);
  });

  it.each(['ports', 'docker', 'domains', 'contexts', 'volumes', 'limits', 'waf', 'test', 'nix'])(
    'the [%s] section is refused by name',
    (section) => {
      const problems = problemsOf(`[run]\nstart = "a"\n[${section}]\nx = 1\n`, PYTHON);
      expect(problems).toHaveLength(1);
      expect(problems[0]).toMatch(
        new RegExp(`^hop3\\.toml: key '${section}' is not supported by hyper_edge \\(.+\\)$`),
      );
    },
  );

  it('static sites: build.static-dir, else public/ when present (as Hop3), else the app directory', () => {
    const toolchain = '[build]\ntoolchain = "static"\n';
    expect(parseAppManifest({ hop3Toml: `${toolchain}static-dir = "site/"\n`, present: new Set() }).staticRoot).toBe(
      'site',
    );
    expect(parseAppManifest({ hop3Toml: toolchain, present: new Set(['public']) }).staticRoot).toBe('public');
    expect(parseAppManifest({ hop3Toml: toolchain, present: new Set(['index.html']) }).staticRoot).toBe('.');
    expect(parseAppManifest({ hop3Toml: '[build]\nstatic-dir = "html"\n', present: new Set() })).toMatchObject({
      runtime: 'static',
      staticRoot: 'html',
    });
    expect(problemsOf('[build]\nstatic-dir = "../x"\n', new Set())).toEqual([
      `hop3.toml: build.static-dir must stay inside the app: no '..' (got "../x")`,
    ]);
  });

  it('[run.workers] web sets the web command (once); release and Hop3 specials are refused', () => {
    expect(parseAppManifest({ hop3Toml: '[run.workers]\nweb = "gunicorn app:app"\n', present: PYTHON }).web).toBe(
      'gunicorn app:app',
    );
    expect(problemsOf('[run]\nstart = "a"\n[run.workers]\nweb = "b"\nrelease = "c"\nprerun = "d"\n', PYTHON)).toEqual([
      'hop3.toml: run.workers.web and run.start both set the web command: keep one',
      'hop3.toml: run.workers.release is not a worker: use run.before-run',
      "hop3.toml: run.workers.prerun is a Hop3 process name hyper_edge does not support (name it 'release': it runs before a new version takes traffic)",
    ]);
  });

  it('with a Procfile: start and before-run override it, workers merge, the same worker twice is an error', () => {
    const procfile = 'web: python old.py\nrelease: python old-migrate.py\nmailer: python mail.py\n';
    const manifest = parseAppManifest({
      procfile,
      hop3Toml: '[run]\nstart = "gunicorn app:app"\nbefore-run = "python migrate.py"\n[run.workers]\nbeat = "b"\n',
      present: PYTHON,
    });
    expect(manifest).toMatchObject({
      sources: ['Procfile', 'hop3.toml'],
      web: 'gunicorn app:app',
      release: 'python migrate.py',
      workers: { mailer: 'python mail.py', beat: 'b' },
    });
    expect(problemsOf('[run.workers]\nmailer = "x"\n', PYTHON, procfile)).toEqual([
      'hop3.toml: run.workers.mailer is also defined in the Procfile (Procfile line 3): define it once',
    ]);
  });

  it('no web process names hop3.toml’s key', () => {
    expect(problemsOf('[run]\nbefore-run = "python migrate.py"\n', PYTHON)).toEqual([
      'no web process: add `web: ...` to the Procfile or [run] start to hop3.toml',
    ]);
  });

  it('health check: [healthcheck] path and contains, or run.healthcheck, not both', () => {
    const manifest = parseAppManifest({
      hop3Toml: '[run]\nstart = "a"\n[healthcheck]\npath = "/up"\ncontains = "ok"\n',
      present: PYTHON,
    });
    expect(manifest.healthcheck).toEqual({ path: '/up', status: 200, bodyContains: 'ok', timeoutS: 60 });
    expect(problemsOf('[run]\nstart = "a"\nhealthcheck = "/a"\n[healthcheck]\npath = "/b"\n', PYTHON)).toEqual([
      'hop3.toml: healthcheck.path and run.healthcheck both set the health check path: keep one',
    ]);
    expect(problemsOf('[run]\nstart = "a"\nstart-timeout = 1.5\n', PYTHON)).toEqual([
      'hop3.toml: run.start-timeout must be an integer from 1 to 600 (got 1.5)',
    ]);
  });

  it('[env]: _policy, computed values, references, odd tables and non-strings are named', () => {
    const problems = problemsOf(
      `
[run]
start = "a"
[env]
_policy = "override"
WORKERS = 4
DB = { from = "db", key = "DATABASE_URL" }
ODD = { x = 1 }
[env.computed]
URL = "https://\${HOST_NAME}"
`,
      PYTHON,
    );
    expect(problems).toEqual([
      "hop3.toml: key 'env._policy' is not supported by hyper_edge (the file sets the values on every deploy)",
      'hop3.toml: env.WORKERS must be a string (got 4: write WORKERS = "4")',
      "hop3.toml: key 'env.DB' is not supported by hyper_edge (no references to addon or app facts)",
      'hop3.toml: env.ODD must be a string or { generate = "urlsafe" }',
      "hop3.toml: key 'env.computed' is not supported by hyper_edge (no ${VAR} interpolation)",
    ]);
  });

  it('addons: the name must be a database name; without name or metadata id it is required', () => {
    expect(problemsOf('[run]\nstart = "a"\n[[addons]]\ntype = "postgres"\nname = "main-db"\n', PYTHON)).toEqual([
      'hop3.toml: addons[0].name "main-db" is not a database name (want [a-z][a-z0-9_]{0,62})',
    ]);
    expect(problemsOf('[run]\nstart = "a"\n[[addons]]\ntype = "postgres"\n', PYTHON)).toEqual([
      'hop3.toml: addons[0].name is required when [metadata] id is not set: the database name',
    ]);
    expect(
      problemsOf('[metadata]\nid = "9lives"\n[run]\nstart = "a"\n[[addons]]\ntype = "postgres"\n', PYTHON),
    ).toEqual([
      'hop3.toml: addons[0].name "9lives", from metadata.id "9lives", is not a database name (want [a-z][a-z0-9_]{0,62})',
    ]);
    expect(
      problemsOf('[run]\nstart = "a"\n[[addons]]\ntype = "postgres"\nname = "db"\nextensions = ["postgis"]\n', PYTHON),
    ).toEqual([
      "hop3.toml: key 'addons[0].extensions' is not supported by hyper_edge (extensions are managed by the hyper_db cluster)",
    ]);
  });

  it('unknown keys get a suggestion among Hop3’s keys', () => {
    expect(problemsOf('[run]\nstrat = "a"\nbefore_run = "b"\n', PYTHON)).toEqual([
      "hop3.toml: unknown key 'run.strat' (did you mean 'run.start'?)",
      "hop3.toml: unknown key 'run.before_run' (did you mean 'run.before-run'?)",
      // True as well: the typo left the app without one.
      'no web process: add `web: ...` to the Procfile or [run] start to hop3.toml',
    ]);
    expect(problemsOf('[run]\nstart = "a"\n[[addon]]\ntype = "postgres"\n', PYTHON)).toEqual([
      "hop3.toml: unknown key 'addon' (did you mean 'addons'?)",
    ]);
    expect(problemsOf('[run]\nstart = "a"\n[metadata]\ntags = "web"\nauthr = "x"\n', PYTHON)).toEqual([
      'hop3.toml: metadata.tags must be an array of strings (got "web")',
      "hop3.toml: unknown key 'metadata.authr' (did you mean 'metadata.author'?)",
    ]);
  });
});
