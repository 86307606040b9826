/**
 * One run of the deploy benchmark for one app, through the real CLI: a fresh
 * deploy (the app did not exist: new partitions, empty npm cache, new
 * database), a redeploy of the same source with nothing else running, a
 * redeploy while a load generator goes through the public endpoint, then
 * `hox app destroy`.
 */
import { join } from 'node:path';
import type { HyperDbPlatform } from '../../src/testing/hyperdb-platform.js';
import { appLogs, runnerSteps, type RunnerStep } from './app-probe.js';
import type { HoxCli } from './hox-cli.js';
import { loadFigures, underLoad, type LoadFigures } from './under-load.js';

/** An example app and the page the load generator asks for. */
export interface AppSpec {
  name: string;
  dir: string;
  runtime: string;
  loadPath: string;
}

export interface MeasureContext {
  platform: HyperDbPlatform;
  hox: HoxCli;
  root: string;
  concurrency: number;
  log: (line: string) => void;
}

/** Where the time of one deploy went (ms); NaN where the runner skipped the step. */
export interface StepDurations {
  /** CLI start-up, pack, upload, request, placement, partition set-up, until the runner's first step. */
  toRunnerMs: number;
  /** Unpack + npm ci / venv (NaN when the build was reused). */
  buildMs: number;
  /** The release command (migrations). */
  releaseMs: number;
  /** `web` started until its health check passed. */
  startHealthyMs: number;
  /** The local proxy switched, the old version drained and stopped. */
  switchDrainMs: number;
  /** The runner serving until the CLI saw it in the published status and exited. */
  reportMs: number;
}

export interface Deploy {
  /** Wall time of `hox app deploy`. */
  ms: number;
  steps: StepDurations;
  /** The public endpoint (no trailing slash). */
  url: string;
}

export interface DeployRun {
  run: number;
  fresh: Deploy;
  /** The same source again, nothing else running. */
  redeploy: Deploy;
  /** The same source again, under load. */
  redeployUnderLoad: Deploy;
  /** The load generator through the public endpoint, from 0.5 s before that redeploy to 0.5 s after it. */
  duringRedeploy: LoadFigures;
  destroyMs: number;
}

function stepDurations(steps: Map<RunnerStep, number>, startedAt: number, endedAt: number): StepDurations {
  const at = (s: RunnerStep): number => steps.get(s) ?? Number.NaN;
  const first = Math.min(...steps.values());
  const buildStart = steps.get('unpack') ?? steps.get('build');
  const afterBuild = steps.get('release') ?? steps.get('start');
  return {
    toRunnerMs: Number.isFinite(first) ? first - startedAt : Number.NaN,
    buildMs: buildStart === undefined || afterBuild === undefined ? Number.NaN : afterBuild - buildStart,
    releaseMs: at('start') - at('release'),
    startHealthyMs: at('switch') - at('start'),
    switchDrainMs: at('serving') - at('switch'),
    reportMs: endedAt - at('serving'),
  };
}

/** `hox app deploy` of the app's directory: wall time and the runner's steps for the release it made. */
async function deploy(ctx: MeasureContext, app: AppSpec): Promise<Deploy> {
  const startedAt = Date.now();
  const run = await ctx.hox.ok(['--json', 'app', 'deploy', app.name, join(ctx.root, app.dir)], () =>
    appLogs(ctx.platform, app.name),
  );
  const endedAt = Date.now();
  let answer: { release?: unknown; state?: unknown; url?: unknown };
  try {
    answer = JSON.parse(run.stdout.trim().split('\n').at(-1) ?? '') as typeof answer;
  } catch (error) {
    throw new Error(`hox app deploy ${app.name}: unexpected output '${run.stdout}'\n${run.stderr}`, { cause: error });
  }
  if (answer.state !== 'serving' || typeof answer.release !== 'number' || typeof answer.url !== 'string')
    throw new Error(`hox app deploy ${app.name}: unexpected answer ${JSON.stringify(answer)}`);
  const steps = await runnerSteps(ctx.platform, app.name, answer.release);
  return { ms: run.wallMs, steps: stepDurations(steps, startedAt, endedAt), url: answer.url.replace(/\/$/, '') };
}

/** The app's public endpoint (no trailing slash), from `hox app status --json`. */
export async function publicUrl(ctx: MeasureContext, app: string): Promise<string> {
  const status = JSON.parse((await ctx.hox.ok(['app', 'status', app, '--json'])).stdout) as { url: string | null };
  if (status.url === null) throw new Error(`${app} has no public url`);
  return status.url.replace(/\/$/, '');
}

const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

/** One run; `beforeDestroy` runs while the app still serves (the throughput measurement). */
export async function deployRun(
  ctx: MeasureContext,
  app: AppSpec,
  run: number,
  beforeDestroy?: () => Promise<void>,
): Promise<DeployRun> {
  const fresh = await deploy(ctx, app);
  const redeploy = await deploy(ctx, app);
  const loaded = await underLoad(`${redeploy.url}${app.loadPath}`, { concurrency: ctx.concurrency, leadMs: 500 }, () =>
    deploy(ctx, app),
  );
  const load = loadFigures([loaded.sample]);
  ctx.log(
    `${app.name} run ${run}: fresh ${seconds(fresh.ms)}, redeploy ${seconds(redeploy.ms)}, ` +
      `under load ${seconds(loaded.value.ms)} (${load.ok} requests, ${load.failures.length} failed)`,
  );
  await beforeDestroy?.();
  const destroy = await ctx.hox.ok(['app', 'destroy', app.name, '--yes']);
  return {
    run,
    fresh,
    redeploy,
    redeployUnderLoad: loaded.value,
    duringRedeploy: load,
    destroyMs: destroy.wallMs,
  };
}
