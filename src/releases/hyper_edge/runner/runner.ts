/**
 * The runner of one replica: builds the release it is given, runs the app's
 * processes, and moves the replica's local proxy (Caddy) from the serving
 * version to a new one only once the new one passes its health check.
 *
 * A deploy, step by step (each step published in the replica's status):
 *   unpack → build → release command → start `web` on the free slot port →
 *   health check → point the proxy at it → wait for the old version's
 *   requests in flight to finish → stop the old version → start workers.
 * Any failure stops the new version and leaves the serving one untouched:
 * the deploy is rolled back, and the reason is published.
 *
 * Only `runner.json` (rewritten by the profile) says what to serve; the
 * runner's own record (`app/state.json`) says what it serves, so a restarted
 * runner brings the same version back.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, unwatchFile, watchFile } from 'node:fs';
import { mkdir, readdir, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { readAppManifest, type AppManifest } from '../manifest/app-manifest.js';
import { replicaProxyConfig, type ReplicaTarget } from '../caddy-config.js';
import type { ProcessStatus, ReplicaStatus, RunRequest, RunStatus, RunnerConfig } from '../protocol.js';
import { AppProcess, runToCompletion } from './app-process.js';
import { appPath, buildRelease } from './app-build.js';
import { adminReady, loadConfig, upstreamRequests } from '../caddy-admin.js';
import { RequestMetrics } from './request-metrics.js';

const RELEASE_TIMEOUT_MS = 10 * 60_000;
const DRAIN_MIN_MS = 1000;
const DRAIN_LIMIT_MS = 15_000;
const KEEP_RELEASE_DIRS = 3;
const WEB_RESTART_FIRST_MS = 500;
const WEB_RESTART_MAX_MS = 30_000;
/** A one-off command's status stays published this long after runner.json stops listing it. */
const RUN_STOP_GRACE_MS = 2000;

interface Serving {
  key: string;
  releaseId: number;
  dir: string;
  slot: 0 | 1;
  manifest: AppManifest;
  env: Record<string, string>;
  web: AppProcess | null;
  workers: AppProcess[];
  /** Times `web` was started again after exiting on its own (`hox app ps`). */
  webRestarts: number;
}

/** A one-off command (`hox app run`) and what it became. */
interface Run {
  request: RunRequest;
  process: AppProcess | null;
  status: RunStatus;
}

interface RunnerRecord {
  serving: { key: string; releaseId: number; dir: string; slot: 0 | 1; env: Record<string, string> } | null;
  failed: { key: string; release: number; reason: string; at: string } | null;
  /** Process groups this runner started (killed after a runner crash, before starting again). */
  groups: number[];
  /** The last restart applied (`hox app restart`): a restarted runner does not apply it again. */
  restart?: ReplicaStatus['restart'];
}

/**
 * The build directory of a source: named after it, but not by the artifact's hash itself (a directory's path
 * ends up on the command lines of the build's and the app's processes, readable by every user on the node).
 */
function buildDirName(sha256: string): string {
  return createHash('sha256').update(`hyper_edge build directory\0${sha256}`).digest('hex').slice(0, 16);
}

/** What identifies a deploy: the code, the environment and whether workers run here. */
function deployKey(config: RunnerConfig): string | null {
  if (config.release === null) return null;
  return createHash('sha256')
    .update(
      JSON.stringify([config.release.sha256, config.release.id, config.env, config.runWorkers, config.appUrl ?? null]),
    )
    .digest('hex')
    .slice(0, 24);
}

export class Runner {
  private config!: RunnerConfig;
  private record: RunnerRecord = { serving: null, failed: null, groups: [] };
  private serving: Serving | null = null;
  private status: ReplicaStatus;
  private working = false;
  private pending = false;
  private stopped = false;
  private publications = 0;
  private saves = 0;
  private readonly appDir: string;
  /** Where the local Caddy sends its access log, and what the runner counts from it (`.hox/metrics.prom`). */
  private readonly accessLogSocket: string;
  private readonly metrics: RequestMetrics;
  private accessLog: string | undefined;

  constructor(
    private readonly configPath: string,
    private readonly partitionPath: string,
    private readonly log: (line: string) => void,
  ) {
    this.appDir = join(partitionPath, 'app');
    this.accessLogSocket = join(partitionPath, 'caddy', 'access.sock');
    this.metrics = new RequestMetrics(partitionPath, log);
    this.status = {
      upstream: '',
      state: 'idle',
      serving: null,
      serving_since: null,
      deploying: null,
      failed: null,
      web_down: null,
      processes: [],
      restart: null,
      runs: [],
    };
  }

  private readonly runs = new Map<string, Run>();

  async start(): Promise<void> {
    this.config = this.readConfig();
    this.status.upstream = `${this.config.host}:${this.config.proxyPort}`;
    await mkdir(join(this.appDir, 'releases'), { recursive: true });
    this.record = this.readRecord();
    for (const group of this.record.groups) killGroup(group, 'SIGKILL');
    this.record.groups = [];
    this.status.restart = this.record.restart ?? null;
    this.status.failed =
      this.record.failed === null
        ? null
        : { release: this.record.failed.release, reason: this.record.failed.reason, at: this.record.failed.at };
    // Before the first configuration that sends the access log to it is loaded.
    this.accessLog = (await this.metrics.start(this.accessLogSocket)) ? this.accessLogSocket : undefined;
    await this.waitForProxy();
    await this.restore();
    watchFile(this.configPath, { interval: 300 }, () => this.poke());
    this.poke();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    unwatchFile(this.configPath);
    const serving = this.serving;
    const runs = [...this.runs.values()].map((r) => r.process).filter((p): p is AppProcess => p !== null);
    const processes = [serving?.web ?? null, ...(serving?.workers ?? []), ...runs].filter(
      (p): p is AppProcess => p !== null,
    );
    await Promise.all(processes.map((p) => p.stop(this.config.stopTimeoutS * 1000)));
    await this.metrics.stop();
  }

  /** Re-reads runner.json and converges (one convergence at a time; a change meanwhile runs another). */
  private poke(): void {
    if (this.working) {
      this.pending = true;
      return;
    }
    this.working = true;
    void (async () => {
      do {
        this.pending = false;
        try {
          this.config = this.readConfig();
          await this.converge();
        } catch (error) {
          this.log(`convergence failed: ${(error as Error).message}`);
        }
      } while (this.pending && !this.stopped);
      this.working = false;
    })();
  }

  private async converge(): Promise<void> {
    await this.convergeRelease();
    await this.convergeRestart();
    this.convergeRuns();
  }

  private async convergeRelease(): Promise<void> {
    const key = deployKey(this.config);
    if (key === null || this.config.release === null) {
      await this.point({ kind: 'none', message: `${this.config.app}: nothing deployed yet` });
      return this.publish('idle');
    }
    if (this.serving?.key === key) return;
    if (this.record.failed?.key === key) return; // already tried and rolled back: wait for another deploy
    await this.deploy(key, this.config.release);
  }

  private async deploy(key: string, release: { id: number; sha256: string; archive: string }): Promise<void> {
    const label = `v${release.id}`;
    // One build per source: a config change or a rollback reuses it (the build does not see config vars).
    const dir = join(this.appDir, 'releases', buildDirName(release.sha256));
    const previous = this.serving;
    const slot: 0 | 1 = previous === null ? 0 : previous.slot === 0 ? 1 : 0;
    const port = this.config.slotPorts[slot];
    const step = (name: string) => {
      this.status.deploying = { release: release.id, step: name };
      this.log(`${label}: ${name}`);
      this.publish('deploying');
    };
    let web: AppProcess | null = null;
    try {
      const manifest = await buildRelease({
        dir,
        archive: release.archive,
        label,
        env: this.baseEnv(),
        log: this.log,
        step,
        onSpawn: this.track,
        storageDir: join(this.appDir, 'storage'),
      });
      const env = this.appEnv(dir, manifest, release.id, port);
      if (manifest.release !== null) {
        step('release');
        await runToCompletion({
          label: `release ${label}`,
          command: manifest.release,
          cwd: dir,
          env,
          log: this.log,
          timeoutMs: RELEASE_TIMEOUT_MS,
          onSpawn: this.track,
        });
      }
      step('start');
      let target: ReplicaTarget;
      if (manifest.web !== null) {
        web = this.spawn(`web ${label}`, manifest.web, dir, env);
        step('health check');
        await this.waitHealthy(manifest, `http://${this.config.host}:${port}`, web);
        target = { kind: 'proxy', dial: `${this.config.host}:${port}` };
        step('switch');
        await this.point(target);
      } else {
        target = { kind: 'static', root: join(dir, manifest.staticRoot ?? '.') };
        step('switch');
        await this.point(target);
        try {
          await this.waitHealthy(manifest, `http://${this.config.host}:${this.config.proxyPort}`, null);
        } catch (error) {
          await this.point(
            previous === null ? { kind: 'none', message: 'no healthy version' } : this.targetOf(previous),
          );
          throw error;
        }
      }
      if (previous !== null) {
        step('drain');
        await this.drainAndStop(previous);
      }
      const now = new Date();
      await utimes(dir, now, now);
      const serving: Serving = {
        key,
        releaseId: release.id,
        dir,
        slot,
        manifest,
        env,
        web,
        workers: [],
        webRestarts: 0,
      };
      this.serving = serving;
      // Every process is new: a restart asked meanwhile is done.
      const restart = this.config.restart ?? null;
      if (restart !== null && restart.id !== this.record.restart?.id)
        this.record.restart = this.status.restart = {
          id: restart.id,
          at: new Date().toISOString(),
          restarted: ['web', ...Object.keys(manifest.workers)],
          error: null,
        };
      this.status.web_down = null;
      this.watchWeb(serving);
      serving.workers = this.startWorkers(serving);
      this.record.serving = { key, releaseId: release.id, dir, slot, env };
      this.record.failed = null;
      this.status.failed = null;
      this.status.serving_since = new Date().toISOString();
      await this.saveRecord();
      this.status.deploying = null;
      this.publish('running');
      this.log(`${label}: serving on ${this.config.host}:${port}`);
      await this.pruneReleases();
    } catch (error) {
      await web?.stop(this.config.stopTimeoutS * 1000);
      const reason = (error as Error).message;
      const at = new Date().toISOString();
      this.record.failed = { key, release: release.id, reason, at };
      this.status.failed = { release: release.id, reason, at };
      this.status.deploying = null;
      await this.saveRecord();
      this.log(
        `${label}: deploy failed${previous === null ? '' : `, v${previous.releaseId} keeps serving`}: ${reason}`,
      );
      this.publish(previous === null ? 'failed' : 'running');
    }
  }

  /** Brings back what the record says was served (after a runner restart). */
  private async restore(): Promise<void> {
    const r = this.record.serving;
    if (r === null || !existsSync(join(r.dir, '.hox-built'))) {
      this.record.serving = null;
      return;
    }
    try {
      const manifest = await readAppManifest(r.dir);
      const serving: Serving = { ...r, manifest, web: null, workers: [], webRestarts: 0 };
      if (manifest.web !== null) {
        serving.web = this.spawn(`web v${r.releaseId}`, manifest.web, r.dir, r.env);
        await this.waitHealthy(manifest, `http://${this.config.host}:${this.config.slotPorts[r.slot]}`, serving.web);
      }
      await this.point(this.targetOf(serving));
      this.serving = serving;
      this.status.web_down = null;
      this.watchWeb(serving);
      serving.workers = this.startWorkers(serving);
      this.status.serving_since = new Date().toISOString();
      this.publish('running');
      this.log(`v${r.releaseId}: serving again after a runner restart`);
    } catch (error) {
      this.log(`could not bring v${r.releaseId} back: ${(error as Error).message}`);
      this.record.serving = null;
      this.serving = null;
    }
  }

  private targetOf(s: Serving): ReplicaTarget {
    return s.manifest.web === null
      ? { kind: 'static', root: join(s.dir, s.manifest.staticRoot ?? '.') }
      : { kind: 'proxy', dial: `${this.config.host}:${this.config.slotPorts[s.slot]}` };
  }

  private async point(target: ReplicaTarget): Promise<void> {
    await loadConfig(
      this.config.adminSocket,
      replicaProxyConfig(
        {
          storageDir: join(this.partitionPath, 'caddy'),
          adminSocket: this.config.adminSocket,
          listen: `${this.config.host}:${this.config.proxyPort}`,
          ...(this.accessLog === undefined ? {} : { accessLog: this.accessLog }),
        },
        target,
      ),
    );
  }

  /** Waits until the old version has no request in flight through the proxy, then stops it. */
  private async drainAndStop(old: Serving): Promise<void> {
    if (old.web !== null) await this.drain(`${this.config.host}:${this.config.slotPorts[old.slot]}`);
    const timeoutMs = this.config.stopTimeoutS * 1000;
    const stopping = old.web;
    old.web = null; // not restarted by watchWeb
    await Promise.all([stopping?.stop(timeoutMs), ...old.workers.map((w) => w.stop(timeoutMs))]);
    old.workers = [];
  }

  /**
   * Caddy's previous configuration shuts down gracefully: a request that reached it on a kept-alive connection
   * just as the new one was loaded is still sent to the old version. So: at least DRAIN_MIN_MS, and then until
   * no request is in flight to `dial` (bounded by DRAIN_LIMIT_MS).
   */
  private async drain(dial: string): Promise<void> {
    const started = Date.now();
    while (Date.now() - started < DRAIN_LIMIT_MS) {
      const inFlight = (await upstreamRequests(this.config.adminSocket).catch(() => new Map<string, number>())).get(
        dial,
      );
      if (Date.now() - started >= DRAIN_MIN_MS && (inFlight === undefined || inFlight === 0)) break;
      await sleep(50);
    }
  }

  private async waitHealthy(manifest: AppManifest, base: string, web: AppProcess | null): Promise<void> {
    const h = manifest.healthcheck;
    const deadline = Date.now() + h.timeoutS * 1000;
    let last = 'no answer yet';
    while (Date.now() < deadline && !this.stopped) {
      if (web !== null && !web.running)
        throw new Error(
          `web exited before it was healthy (${(await web.exited).code ?? 'signal'}): ${web.summary() || 'no output'}`,
        );
      try {
        const response = await fetch(`${base}${h.path}`, { signal: AbortSignal.timeout(2000), redirect: 'manual' });
        const body = await response.text();
        if (response.status !== h.status) last = `GET ${h.path} answered ${response.status}, expected ${h.status}`;
        else if (h.bodyContains !== null && !body.includes(h.bodyContains))
          last = `GET ${h.path} answered ${response.status} without '${h.bodyContains}' in its body`;
        else return;
      } catch (error) {
        last = `GET ${h.path}: ${(error as Error).cause instanceof Error ? ((error as Error).cause as Error).message : (error as Error).message}`;
      }
      await sleep(200);
    }
    throw new Error(`health check failed after ${h.timeoutS} s: ${last}`);
  }

  private spawn(label: string, command: string, cwd: string, env: Record<string, string>): AppProcess {
    return new AppProcess({ label, command, cwd, env, log: this.log, onSpawn: this.track });
  }

  /**
   * Records a process group at once (served processes, builds, release commands): a runner that crashes
   * or is restarted leaves its groups running, and the next one kills them before it does anything.
   */
  private readonly track = (group: number, exited: Promise<unknown>): void => {
    this.record.groups.push(group);
    void this.saveRecord().catch(() => undefined);
    void exited.then(() => {
      this.record.groups = this.record.groups.filter((g) => g !== group);
    });
  };

  /**
   * Restarts the serving web process when it dies on its own, with a growing delay (0.5 s, doubled up to
   * 30 s, back to 0.5 s once it is healthy again). Meanwhile the status says the web process is down, and
   * why: the replica does not count as healthy until the restarted process passes the health check.
   */
  private watchWeb(serving: Serving): void {
    const first = serving.web;
    if (first === null) return;
    let delayMs = WEB_RESTART_FIRST_MS;
    let restarts = 0;
    const current = () => this.serving === serving && serving.web !== null && !this.stopped;
    const onExit = async (web: AppProcess): Promise<void> => {
      const { code, signal } = await web.exited;
      if (!current() || serving.web !== web) return;
      const output = web.summary();
      const reason = `web v${serving.releaseId} exited (${code ?? signal})${output === '' ? '' : `: ${output}`}`;
      const down = { reason, since: this.status.web_down?.since ?? new Date().toISOString(), restarts };
      this.status.web_down = down;
      this.publish(this.status.state);
      this.log(`${reason}; restarting in ${delayMs} ms`);
      await sleep(delayMs);
      delayMs = Math.min(delayMs * 2, WEB_RESTART_MAX_MS);
      if (!current() || serving.web !== web) return;
      restarts += 1;
      serving.webRestarts += 1;
      this.metrics.webRestarted();
      const next = this.spawn(`web v${serving.releaseId}`, serving.manifest.web!, serving.dir, serving.env);
      serving.web = next;
      this.status.web_down = { ...down, restarts };
      this.publish(this.status.state);
      void onExit(next);
      try {
        await this.waitHealthy(
          serving.manifest,
          `http://${this.config.host}:${this.config.slotPorts[serving.slot]}`,
          next,
        );
      } catch {
        return; // exited again (the handler above restarts it) or still unhealthy: stays down
      }
      if (!current() || serving.web !== next) return;
      this.status.web_down = null;
      delayMs = WEB_RESTART_FIRST_MS;
      this.publish(this.status.state);
      this.log(`web v${serving.releaseId} healthy again after ${restarts} restart(s)`);
    };
    void onExit(first);
  }

  private startWorkers(serving: Serving): AppProcess[] {
    if (!this.config.runWorkers) return [];
    const workers: AppProcess[] = [];
    for (const [name, command] of Object.entries(serving.manifest.workers)) {
      const count = serving.manifest.scale.workers[name] ?? 1;
      for (let i = 1; i <= count; i++) workers.push(this.startWorker(serving, `${name}.${i}`, command));
    }
    return workers;
  }

  private startWorker(serving: Serving, name: string, command: string): AppProcess {
    const worker = this.spawn(`${name} v${serving.releaseId}`, command, serving.dir, serving.env);
    // `hox app ps` says it crashed (workers are not restarted).
    void worker.exited.then(() => {
      if (this.serving === serving && serving.workers.includes(worker)) this.publish(this.status.state);
    });
    return worker;
  }

  /**
   * `hox app restart`: once per id, restarts the serving processes (all, or one type). A new `web` starts on
   * the other slot port and takes the traffic once healthy, as a deploy does, and the old one is drained and
   * stopped: the replica serves throughout. Workers are stopped and started again. If the new `web` is not
   * healthy, the old one keeps serving and the restart is published as failed.
   */
  private async convergeRestart(): Promise<void> {
    const request = this.config.restart ?? null;
    if (request === null || request.id === this.record.restart?.id) return;
    const serving = this.serving;
    const restarted: string[] = [];
    let error: string | null = null;
    if (serving !== null) {
      const label = `v${serving.releaseId}`;
      this.log(`${label}: restart ${request.id}${request.process === null ? '' : ` of ${request.process}`}`);
      try {
        if ((request.process === null || request.process === 'web') && serving.manifest.web !== null) {
          await this.restartWeb(serving);
          restarted.push('web');
        }
        const matching = serving.workers.filter(
          (w) => request.process === null || processType(w.label) === request.process,
        );
        const timeoutMs = this.config.stopTimeoutS * 1000;
        for (const old of matching) {
          const name = processName(old.label);
          serving.workers = serving.workers.filter((w) => w !== old);
          await old.stop(timeoutMs);
          serving.workers.push(this.startWorker(serving, name, serving.manifest.workers[processType(old.label)]!));
          restarted.push(name);
        }
      } catch (e) {
        error = (e as Error).message;
        this.log(`${label}: restart ${request.id} failed: ${error}`);
      }
    } else error = 'nothing serves on this replica';
    this.record.restart = this.status.restart = { id: request.id, at: new Date().toISOString(), restarted, error };
    await this.saveRecord();
    this.publish(this.status.state);
  }

  private async restartWeb(serving: Serving): Promise<void> {
    const slot: 0 | 1 = serving.slot === 0 ? 1 : 0;
    const port = this.config.slotPorts[slot];
    const env = { ...serving.env, PORT: String(port) };
    const web = this.spawn(`web v${serving.releaseId}`, serving.manifest.web!, serving.dir, env);
    try {
      await this.waitHealthy(serving.manifest, `http://${this.config.host}:${port}`, web);
      await this.point({ kind: 'proxy', dial: `${this.config.host}:${port}` });
    } catch (error) {
      await web.stop(this.config.stopTimeoutS * 1000);
      throw error;
    }
    const old = serving.web;
    const oldDial = `${this.config.host}:${this.config.slotPorts[serving.slot]}`;
    // From here the new one is the serving web (the crash watcher of the old one lets it go).
    serving.web = web;
    serving.slot = slot;
    serving.env = env;
    serving.webRestarts = 0;
    this.status.web_down = null;
    this.record.serving = { key: serving.key, releaseId: serving.releaseId, dir: serving.dir, slot, env };
    await this.saveRecord();
    this.watchWeb(serving);
    this.publish(this.status.state);
    if (old !== null) {
      await this.drain(oldDial);
      await old.stop(this.config.stopTimeoutS * 1000);
    }
  }

  /**
   * `hox app run`: starts the commands runner.json lists and has not started yet, with the serving release's
   * environment and directory, and stops those it no longer lists (the CLI was interrupted, or is done).
   */
  private convergeRuns(): void {
    const wanted = new Map((this.config.runs ?? []).map((r) => [r.id, r]));
    for (const [id, run] of this.runs) {
      if (wanted.has(id)) continue;
      this.runs.delete(id);
      if (run.process !== null && run.status.state === 'running') {
        this.log(`[run.${id}] stopped: no longer requested`);
        void run.process.stop(RUN_STOP_GRACE_MS);
      }
    }
    for (const [id, request] of wanted) {
      if (this.runs.has(id)) continue;
      const serving = this.serving;
      const status: RunStatus = {
        id,
        state: 'exited',
        release: serving?.releaseId ?? null,
        pid: null,
        started_at: null,
        finished_at: null,
        exit_code: null,
        signal: null,
        error: null,
      };
      const run: Run = { request, process: null, status };
      this.runs.set(id, run);
      if (serving === null) {
        status.error = 'nothing serves on this replica: deploy the app first';
        status.finished_at = new Date().toISOString();
        continue;
      }
      this.startRun(run, serving);
    }
    this.publish(this.status.state);
  }

  private startRun(run: Run, serving: Serving): void {
    const { id, argv, timeout_s: timeoutS } = run.request;
    // The serving release's environment, without the web process's port (a one-off does not serve).
    const env = { ...serving.env };
    delete env.PORT;
    const label = `run.${id} v${serving.releaseId}`;
    const p = new AppProcess({
      label,
      command: argv.join(' '),
      argv,
      cwd: serving.dir,
      env: { ...env, HOX_PROCESS: `run.${id}` },
      log: this.log,
      onSpawn: this.track,
    });
    run.process = p;
    Object.assign(run.status, { state: 'running', pid: p.child.pid ?? null, started_at: p.startedAt });
    // The runner's own lines about the command: `[run.<id>]`, not its output's `[run.<id> v<N>]`.
    this.log(`[run.${id}] started (pid ${p.child.pid ?? '?'}, v${serving.releaseId})`);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      this.log(`[run.${id}] stopped after its ${timeoutS} s limit`);
      void p.stop(RUN_STOP_GRACE_MS);
    }, timeoutS * 1000);
    void (async () => {
      const { code, signal } = await p.exited;
      clearTimeout(timer);
      // The last lines may still be in the pipes: they go to the log before the exit is published.
      await Promise.race([once(p.child, 'close'), sleep(500)]);
      this.log(`[run.${id}] exited (${code ?? signal})`);
      Object.assign(run.status, {
        state: 'exited',
        finished_at: new Date().toISOString(),
        exit_code: code,
        signal,
        error: timedOut ? `stopped after its ${timeoutS} s limit` : null,
      });
      this.publish(this.status.state);
    })();
  }

  /** What install and build commands see. */
  private baseEnv(): Record<string, string> {
    return {
      HOME: this.partitionPath,
      PATH: [process.execPath.replace(/\/[^/]+$/, ''), '/usr/local/bin', '/usr/bin', '/bin'].join(':'),
      LANG: 'C.UTF-8',
      npm_config_cache: join(this.partitionPath, '.npm'),
      npm_config_update_notifier: 'false',
      PIP_NO_INPUT: '1',
    };
  }

  /**
   * What the app's processes see, lowest first: APP_URL, the manifest's [env], the root's variables (generated
   * secrets, config vars, the addon's), then the platform's own (PATH, HOST, PORT, HOX_*), which the manifest
   * and config cannot set. docs/hyper-edge.md states this order.
   */
  private appEnv(dir: string, manifest: AppManifest, releaseId: number, port: number): Record<string, string> {
    const appUrl = this.config.appUrl ?? null; // null: a runner.json written before APP_URL existed
    const env: Record<string, string> = {
      ...(appUrl === null ? {} : { APP_URL: appUrl }),
      ...manifest.env,
      ...this.config.env,
    };
    return {
      ...this.baseEnv(),
      ...env,
      PATH: appPath(dir, manifest),
      HOST: this.config.host,
      PORT: String(port),
      HOX_APP: this.config.app,
      HOX_APP_VERSION: `v${releaseId}`,
      HOX_REPLICA: this.config.replica,
      ...(manifest.runtime === 'node' ? { NODE_ENV: env.NODE_ENV ?? 'production' } : {}),
      ...(manifest.runtime === 'python' ? { VIRTUAL_ENV: join(dir, '.venv'), PYTHONUNBUFFERED: '1' } : {}),
    };
  }

  private async waitForProxy(): Promise<void> {
    for (let i = 0; i < 150; i++) {
      if (await adminReady(this.config.adminSocket)) return;
      await sleep(200);
    }
    throw new Error(`the local proxy's admin socket ${this.config.adminSocket} did not answer within 30 s`);
  }

  private async pruneReleases(): Promise<void> {
    const root = join(this.appDir, 'releases');
    const dirs = await Promise.all(
      (await readdir(root)).map(async (d) => ({ d, at: (await stat(join(root, d))).mtimeMs })),
    );
    const newest = dirs.sort((a, b) => b.at - a.at).map((x) => x.d);
    const keep = new Set(newest.slice(0, KEEP_RELEASE_DIRS));
    for (const d of newest)
      if (!keep.has(d) && join(root, d) !== this.serving?.dir)
        await rm(join(root, d), { recursive: true, force: true });
  }

  private publish(state: ReplicaStatus['state']): void {
    this.status.state = state;
    this.status.serving = this.serving?.releaseId ?? null;
    this.status.processes = this.processes();
    this.status.runs = [...this.runs.values()].map((r) => ({ ...r.status }));
    this.metrics.setWebUp(this.serving?.web != null && this.status.web_down === null);
    const dir = join(this.partitionPath, '.hox');
    const text = `${JSON.stringify(this.status)}\n`;
    const tmp = join(dir, `publish.json.tmp-${++this.publications}`);
    void writeFile(tmp, text)
      .then(() => rename(tmp, join(dir, 'publish.json')))
      .catch((error: unknown) => this.log(`could not publish the status: ${(error as Error).message}`));
  }

  /** The serving release's processes, as `hox app ps` shows them. */
  private processes(): ProcessStatus[] {
    const s = this.serving;
    if (s === null) return [];
    const out: ProcessStatus[] = [];
    const of = (p: AppProcess, state: ProcessStatus['state'], restarts: number): ProcessStatus => ({
      name: processName(p.label),
      type: processType(p.label),
      release: s.releaseId,
      state,
      pid: p.mainPid(),
      started_at: p.startedAt,
      restarts,
    });
    if (s.web !== null)
      out.push(
        of(s.web, this.status.web_down === null ? 'running' : s.web.running ? 'restarting' : 'crashed', s.webRestarts),
      );
    for (const w of s.workers) out.push(of(w, w.running ? 'running' : 'crashed', 0));
    return out;
  }

  private readConfig(): RunnerConfig {
    return JSON.parse(readFileSync(this.configPath, 'utf8')) as RunnerConfig;
  }

  private readRecord(): RunnerRecord {
    try {
      return JSON.parse(readFileSync(join(this.appDir, 'state.json'), 'utf8')) as RunnerRecord;
    } catch {
      return { serving: null, failed: null, groups: [] };
    }
  }

  private async saveRecord(): Promise<void> {
    const path = join(this.appDir, 'state.json');
    const tmp = `${path}.tmp-${++this.saves}`;
    await writeFile(tmp, JSON.stringify(this.record));
    await rename(tmp, path);
  }
}

/** `ticker.1` of `ticker.1 v3`. */
function processName(label: string): string {
  return label.split(' ')[0]!;
}

/** `ticker` of `ticker.1 v3`. */
function processType(label: string): string {
  return processName(label).replace(/\.\d+$/, '');
}

function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // gone
  }
}
