/**
 * `hox app ps`, `hox app restart` and `hox app run`: an app's processes, seen,
 * restarted and added to, always through the master (the CLI never reaches a
 * node: the app may run on other machines).
 *
 * - ps reads what each replica's runner publishes (its processes, with pid,
 *   start time, restarts) and where the master placed it (node, partition).
 * - restart is desired state: the root's `restart` parameter gives a replica
 *   a new restart id, its runner applies each id once (a new `web` takes the
 *   traffic once healthy, the old one is drained), and publishes it; the CLI
 *   goes replica by replica, waiting for each.
 * - run lists a one-off command (an argument vector) in the root's `runs`
 *   parameter, for one replica serving the current release: its runner runs
 *   it in that release's directory with the app's environment, its output
 *   reaches the CLI through the log relay and its exit through the replica's
 *   published status. The CLI then removes it from `runs` (also on Ctrl-C:
 *   the runner stops a command it no longer lists).
 */
import { randomBytes } from 'node:crypto';
import type { MasterClient } from '../../client/master-client.js';
import { isNotReady } from '../../client/master-client.js';
import type { Body } from '../../protocol/schemas.js';
import type { ProcessStatus, RunStatus } from '../../releases/hyper_edge/protocol.js';
import { HoxError } from '../../shared/errors.js';
import type { ActionContext } from '../action-context.js';
import { CommandExit } from '../exit-codes.js';
import { findTreeRoot, followTree, treeProblems, type Tree, type TreeInstance } from '../db/cluster-client.js';

const HYPER_EDGE_RELEASE = 'hyper_edge';
const APP_TYPE = 'app';
const REPLICA = /^replica-(\d+)$/;
/** How often `hox app run` reads the command's output and state. */
const RUN_POLL_MS = 500;
/** After the command's exit is published, how long to wait for its last output lines. */
const RUN_TAIL_MS = 5000;
const MAX_RUN_ARGS = 256;
const MAX_RUN_ARG_CHARS = 8192;
const MAX_RUN_TIMEOUT_S = 86_400;

interface AppRoot {
  parameters: Record<string, unknown>;
  release: number | null;
}

/** The app's root, the caller's own (the master answers only for the caller's trees): else a clear error. */
async function requireApp(client: MasterClient, name: string): Promise<AppRoot> {
  const root = await findTreeRoot(client, name);
  if (root === undefined)
    throw new HoxError(
      'HOX_INSTANCE_TREE_NOT_FOUND',
      `app '${name}' not found (hox app list shows your apps; deploy one with hox app deploy ${name} DIR)`,
    );
  if (root.software_release_uri !== HYPER_EDGE_RELEASE || root.software_type !== APP_TYPE || root.shared)
    throw new HoxError(
      'HOX_TITLE_CONFLICT',
      `'${name}' is an instance tree of release '${root.software_release_uri}', not a hyper_edge app`,
    );
  if (root.state === 'destroyed') throw new HoxError('HOX_CONFLICT', `app '${name}' is being destroyed`);
  const release = (root.parameters as { release?: { id?: unknown } }).release?.id;
  return { parameters: root.parameters, release: typeof release === 'number' ? release : null };
}

/** Requests the app's root again with `change` applied to its current parameters (read just before). */
async function changeRoot(
  client: MasterClient,
  name: string,
  change: (parameters: Record<string, unknown>) => Record<string, unknown>,
): Promise<void> {
  const { parameters } = await requireApp(client, name);
  const answer = await client.call('requestInstance', {
    title: name,
    software_release_uri: HYPER_EDGE_RELEASE,
    software_type: APP_TYPE,
    parameters: change(parameters),
    shared: false,
  });
  if (isNotReady(answer)) throw new HoxError('HOX_CONFLICT', `app '${name}': ${answer.message}`);
}

async function readTree(client: MasterClient, name: string): Promise<Tree> {
  const [tree] = (await client.call('listTreeStatus', { title: name })).result_list;
  if (tree === undefined) throw new HoxError('HOX_INSTANCE_TREE_NOT_FOUND', `app '${name}' not found`);
  return tree;
}

/** The app's replicas (not those being destroyed), in order. */
function replicasOf(tree: Tree): TreeInstance[] {
  return tree.instance_list
    .filter((i) => !i.shared && REPLICA.test(i.title) && i.state !== 'destroyed')
    .sort((a, b) => replicaNumber(a.title) - replicaNumber(b.title));
}

function replicaNumber(title: string): number {
  return Number(REPLICA.exec(title)?.[1] ?? 0);
}

const obj = (v: unknown): Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const num = (v: unknown): number | null => (typeof v === 'number' ? v : null);

function processesOf(replica: TreeInstance): ProcessStatus[] {
  const list = replica.connection_parameters.processes;
  if (!Array.isArray(list)) return [];
  return list.map(obj).map((p) => ({
    name: str(p.name) ?? '?',
    type: str(p.type) ?? '?',
    release: num(p.release) ?? 0,
    state: (['running', 'crashed', 'restarting'].includes(str(p.state) ?? '')
      ? p.state
      : 'running') as ProcessStatus['state'],
    pid: num(p.pid),
    started_at: str(p.started_at) ?? '',
    restarts: num(p.restarts) ?? 0,
  }));
}

function runOf(replica: TreeInstance | undefined, id: string): RunStatus | undefined {
  const list = replica?.connection_parameters.runs;
  if (!Array.isArray(list)) return undefined;
  const r = list.map(obj).find((x) => x.id === id);
  if (r === undefined) return undefined;
  return {
    id,
    state: r.state === 'running' ? 'running' : 'exited',
    release: num(r.release),
    pid: num(r.pid),
    started_at: str(r.started_at),
    finished_at: str(r.finished_at),
    exit_code: num(r.exit_code),
    signal: str(r.signal),
    error: str(r.error),
  };
}

function lastRestart(replica: TreeInstance | undefined): { id: string; restarted: string[]; error: string | null } {
  const r = obj(replica?.connection_parameters.restart);
  return {
    id: str(r.id) ?? '',
    restarted: Array.isArray(r.restarted) ? r.restarted.filter((x): x is string => typeof x === 'string') : [],
    error: str(r.error),
  };
}

/** `2h05m`, `3m12s`, `41s`. */
export function formatUptime(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(s / 86_400)}d${String(Math.floor((s % 86_400) / 3600)).padStart(2, '0')}h`;
}

/** One row of `hox app ps`. */
export interface PsRow {
  replica: string;
  node: string | null;
  partition: string | null;
  /** `web`, `ticker.1`; null for a replica with no process (its state says why). */
  process: string | null;
  type: string | null;
  state: string;
  pid: number | null;
  started_at: string | null;
  uptime_s: number | null;
  restarts: number;
  release: number | null;
}

export function psRows(tree: Tree, nowMs: number): PsRow[] {
  const rows: PsRow[] = [];
  for (const r of replicasOf(tree)) {
    const where = { replica: r.title, node: r.computer_guid, partition: r.compute_partition_id };
    const processes = processesOf(r);
    if (processes.length === 0) {
      const c = r.connection_parameters;
      const deploying = obj(c.deploying);
      const state =
        r.access_status_message.startsWith('#error') && r.reported_state !== null
          ? `error: ${r.access_status_message.replace(/^#error (while instan[ct]iating: )?/, '')}`
          : num(deploying.release) !== null
            ? `deploying v${num(deploying.release)} (${str(deploying.step) ?? ''})`
            : (str(c.state) ?? (r.computer_guid === null ? 'waiting for a partition' : 'starting'));
      rows.push({
        ...where,
        process: null,
        type: null,
        state,
        pid: null,
        started_at: null,
        uptime_s: null,
        restarts: 0,
        release: num(c.serving),
      });
      continue;
    }
    for (const p of processes) {
      const started = Date.parse(p.started_at);
      rows.push({
        ...where,
        process: p.name,
        type: p.type,
        state: p.state,
        pid: p.pid,
        started_at: p.started_at || null,
        uptime_s: Number.isNaN(started) ? null : Math.max(0, Math.round((nowMs - started) / 1000)),
        restarts: p.restarts,
        release: p.release,
      });
    }
  }
  return rows;
}

export function formatPsRows(rows: PsRow[]): string[] {
  const cells = rows.map((r) => [
    r.replica,
    r.process ?? '-',
    r.state,
    r.pid === null ? '-' : `pid ${r.pid}`,
    r.uptime_s === null ? '-' : `up ${formatUptime(r.uptime_s)}`,
    `restarts ${r.restarts}`,
    r.release === null ? '-' : `v${r.release}`,
    `${r.node ?? '-'}/${r.partition ?? '-'}`,
  ]);
  const widths = cells[0]?.map((_, i) => Math.max(...cells.map((c) => c[i]!.length))) ?? [];
  return cells.map((c) =>
    c
      .map((cell, i) => (i === c.length - 1 ? cell : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd(),
  );
}

/** `hox app ps APP`: every process of every replica, from what the nodes reported to the master. */
export async function psApp(ctx: ActionContext, name: string): Promise<void> {
  const app = await requireApp(ctx.client, name);
  const tree = await readTree(ctx.client, name);
  const rows = psRows(tree, Date.now());
  if (ctx.json) return ctx.print(JSON.stringify({ app: name, release: app.release, processes: rows }));
  if (rows.length === 0) return ctx.print(`${name}: no replica yet`);
  ctx.print(`${name}: ${app.release === null ? 'nothing deployed' : `release v${app.release}`}`);
  for (const line of formatPsRows(rows)) ctx.print(`  ${line}`);
}

const newId = (): string => randomBytes(6).toString('hex');

/**
 * `hox app restart APP`: one replica at a time, a new restart id in the root's parameters; waits until its
 * runner has applied it (the new processes started, a new `web` healthy and serving) before the next.
 */
export async function restartApp(
  ctx: ActionContext,
  name: string,
  options: { process?: string; replica?: number; wait: boolean; timeoutMs: number },
): Promise<void> {
  const app = await requireApp(ctx.client, name);
  if (app.release === null)
    throw new HoxError('HOX_CONFLICT', `app '${name}' has nothing deployed: nothing to restart`);
  const tree = await readTree(ctx.client, name);
  let replicas = replicasOf(tree);
  if (options.replica !== undefined) {
    const title = `replica-${options.replica}`;
    replicas = replicas.filter((r) => r.title === title);
    if (replicas.length === 0)
      throw new HoxError(
        'HOX_BAD_REQUEST',
        `app '${name}' has no ${title} (${replicasOf(tree)
          .map((r) => r.title)
          .join(', ')})`,
        { field: '--replica' },
      );
  }
  if (replicas.length === 0) throw new HoxError('HOX_CONFLICT', `app '${name}' has no replica yet`);
  if (options.process !== undefined) {
    const types = [...new Set(replicasOf(tree).flatMap((r) => processesOf(r).map((p) => p.type)))];
    if (types.length > 0 && !types.includes(options.process))
      throw new HoxError(
        'HOX_BAD_REQUEST',
        `app '${name}' runs no process of type '${options.process}' (it runs: ${types.sort().join(', ')})`,
        { field: '--process' },
      );
  }
  const what = options.process ?? 'every process';
  const deadline = Date.now() + options.timeoutMs;
  const done: { replica: string; restarted: string[]; pids: string }[] = [];
  for (const replica of replicas) {
    const id = newId();
    const pidsBefore = processesOf(replica)
      .filter((p) => options.process === undefined || p.type === options.process)
      .map((p) => `${p.name} ${p.pid ?? '?'}`);
    await changeRoot(ctx.client, name, (parameters) => ({
      ...parameters,
      restart: {
        ...obj(parameters.restart),
        [replica.title]: { id, ...(options.process === undefined ? {} : { process: options.process }) },
      },
    }));
    if (!options.wait) {
      ctx.progress(`${replica.title}: restart of ${what} requested`);
      continue;
    }
    ctx.progress(`${replica.title}: restarting ${what}`);
    const result = await followTree<{ applied: ReturnType<typeof lastRestart>; now: TreeInstance }>(ctx.client, name, {
      timeoutMs: Math.max(1000, deadline - Date.now()),
      waitingFor: `${replica.title} of app '${name}' to restart ${what}`,
      progress: ctx.progress,
      check: (t) => {
        if (t === undefined) throw new HoxError('HOX_INSTANCE_TREE_NOT_FOUND', `app '${name}' is gone`);
        const now = t.instance_list.find((i) => i.title === replica.title && !i.shared);
        const applied = lastRestart(now);
        if (now !== undefined && applied.id === id) return { done: { applied, now } };
        return { progress: `${replica.title}: restarting ${what}` };
      },
    });
    if (result.applied.error !== null)
      throw new HoxError(
        'HOX_CONFLICT',
        `${name}: ${replica.title}: restart failed: ${result.applied.error} — its processes from before keep running` +
          (done.length === 0 ? '' : ` (restarted before it: ${done.map((d) => d.replica).join(', ')})`),
      );
    const pidsAfter = processesOf(result.now)
      .filter((p) => options.process === undefined || p.type === options.process)
      .map((p) => `${p.name} ${p.pid ?? '?'}`);
    const pids = `pids ${pidsBefore.join(', ') || '-'} → ${pidsAfter.join(', ') || '-'}`;
    ctx.progress(`${replica.title}: restarted ${result.applied.restarted.join(', ') || 'nothing'} (${pids})`);
    done.push({ replica: replica.title, restarted: result.applied.restarted, pids });
  }
  const titles = replicas.map((r) => r.title).join(', ');
  if (ctx.json)
    return ctx.print(
      JSON.stringify({
        app: name,
        process: options.process ?? null,
        state: options.wait ? 'restarted' : 'requested',
        replicas: options.wait ? done : replicas.map((r) => ({ replica: r.title })),
      }),
    );
  if (!options.wait)
    return ctx.print(
      `${name}: restart of ${what} requested on ${titles} (all at once: each replica's new web takes the traffic once healthy); follow it with hox app ps ${name}`,
    );
  ctx.print(`${name}: restarted ${what} on ${titles}, one replica at a time; v${app.release} serving throughout`);
}

type TreeLogResult = Body<'treeLogResult'>;

/** The root's `runs` parameter (one-off commands in progress). */
function runsOf(parameters: Record<string, unknown>): unknown[] {
  return Array.isArray(parameters.runs) ? (parameters.runs as unknown[]) : [];
}

export interface RunOptions {
  timeoutS: number;
  replica?: number;
  /** Where the command's output goes (stdout), line by line. */
  output: (line: string) => void;
  /** Where what hox says goes (stderr). */
  note: (line: string) => void;
  /** Registers what to do on Ctrl-C (the command is stopped and removed). */
  onStop: (stop: () => Promise<void>, kind: 'cleanup') => void;
  /** Resolves on Ctrl-C. */
  stopped: Promise<void>;
}

/**
 * `hox app run APP -- CMD ARGS…`: runs CMD once on a replica serving the current release, with the app's
 * environment, prints its output and ends as it did: its exit code becomes hox's ({@link CommandExit}).
 */
export async function runApp(ctx: ActionContext, name: string, argv: string[], options: RunOptions): Promise<void> {
  if (argv.length === 0)
    throw new HoxError('HOX_BAD_REQUEST', 'no command given: hox app run APP -- CMD [ARGS…]', { field: 'command' });
  // What the release accepts (release.ts, runSchema): said here rather than by the node, after a wait.
  if (argv.length > MAX_RUN_ARGS || argv.some((a) => a.length > MAX_RUN_ARG_CHARS))
    throw new HoxError(
      'HOX_BAD_REQUEST',
      `the command may have at most ${MAX_RUN_ARGS} arguments of at most ${MAX_RUN_ARG_CHARS} characters each`,
      { field: 'command' },
    );
  if (options.timeoutS > MAX_RUN_TIMEOUT_S)
    throw new HoxError('HOX_BAD_REQUEST', `--timeout is at most ${MAX_RUN_TIMEOUT_S} s (a day)`, {
      field: '--timeout',
    });
  const app = await requireApp(ctx.client, name);
  if (app.release === null)
    throw new HoxError(
      'HOX_CONFLICT',
      `app '${name}' has nothing deployed: deploy it first (hox app deploy ${name} DIR)`,
    );
  const tree = await readTree(ctx.client, name);
  const serving = replicasOf(tree).filter(
    (r) => r.connection_parameters.serving === app.release && r.connection_parameters.state === 'running',
  );
  const wanted = options.replica === undefined ? undefined : `replica-${options.replica}`;
  const replica = wanted === undefined ? serving[0] : serving.find((r) => r.title === wanted);
  if (replica === undefined)
    throw new HoxError(
      'HOX_CONFLICT',
      `${wanted ?? `no replica of app '${name}'`} ${wanted === undefined ? 'serves' : 'does not serve'} its current release v${app.release} yet (hox app status ${name} says why)`,
    );

  // Where the replica's runner log stands now: the command's lines are those after it.
  const offsets = new Map<string, { instance_guid: string; service: string; offset: number }>();
  const remember = (result: TreeLogResult): void => {
    for (const l of result.log_list)
      if (l.instance_guid === replica.instance_guid)
        offsets.set(l.service, { instance_guid: l.instance_guid, service: l.service, offset: l.offset });
  };
  remember(await ctx.client.call('readTreeLogs', { title: name, service: 'runner', lines: 1 }));

  const id = newId();
  const prefix = `[run.${id} v`;
  let removed = false;
  const remove = async (): Promise<void> => {
    if (removed) return;
    removed = true;
    await changeRoot(ctx.client, name, (parameters) => {
      const runs = runsOf(parameters).filter((r) => obj(r).id !== id);
      const rest = { ...parameters };
      delete rest.runs;
      return runs.length === 0 ? rest : { ...rest, runs };
    });
  };
  options.onStop(async () => {
    options.note(`${name}: stopping \`${argv.join(' ')}\` on ${replica.title}`);
    await remove();
  }, 'cleanup');
  await changeRoot(ctx.client, name, (parameters) => ({
    ...parameters,
    runs: [...runsOf(parameters), { id, replica: replica.title, argv, timeout_s: options.timeoutS }],
  }));
  options.note(`${name}: running \`${argv.join(' ')}\` on ${replica.title} (v${app.release})`);

  let stop = false;
  void options.stopped.then(() => (stop = true));
  // Two witnesses of the command's end, whichever speaks first: the runner's log line `[run.<id>] exited
  // (<code or signal>)` (it follows the command's last lines) and the run's state the replica publishes.
  let logged: { exit_code: number | null; signal: string | null; limited: boolean } | undefined;
  let limited = false;
  let toldUnanswered = false;
  /** Prints the command's new lines; true once the runner's line saying it exited was read. */
  const readOutput = async (): Promise<boolean> => {
    let result: TreeLogResult;
    try {
      result = await ctx.client.call('readTreeLogs', {
        title: name,
        service: 'runner',
        offset_list: [...offsets.values()],
      });
      toldUnanswered = false;
    } catch (error) {
      if (!(error instanceof HoxError && error.retryable)) throw error;
      // A retryable failure is a node that did not answer within the master's wait (10 s): said once per
      // silence, so that a wait on a silent node is not a silent wait.
      if (!toldUnanswered)
        options.note(`${name}: ${replica.title}'s output cannot be read yet (${error.message}); still waiting`);
      toldUnanswered = true;
      return false;
    }
    remember(result);
    for (const log of result.log_list) {
      if (log.instance_guid !== replica.instance_guid) continue;
      for (const raw of log.lines) {
        // `<time> [run.<id> v<N>] <line>`; the runner's own `[run.<id>] …` lines are not the command's.
        const at = raw.indexOf(prefix);
        if (at === -1 || at > 40) {
          if (raw.includes(`[run.${id}] stopped after its`)) limited = true;
          const exited = new RegExp(`\\[run\\.${id}\\] exited \\((-?\\d+|[A-Z0-9]+)\\)`).exec(raw);
          if (exited !== null) {
            const code = /^-?\d+$/.test(exited[1]!) ? Number(exited[1]) : null;
            logged = { exit_code: code, signal: code === null ? exited[1]! : null, limited };
          }
          continue;
        }
        const text = raw.slice(at + prefix.length).replace(/^\d+\] ?/, '');
        options.output(text);
      }
    }
    return logged !== undefined;
  };

  let status: RunStatus | undefined;
  try {
    const deadline = Date.now() + options.timeoutS * 1000 + 120_000;
    const rounds = Math.ceil((options.timeoutS * 1000 + 120_000) / RUN_POLL_MS);
    for (let round = 0; round < rounds && !stop && Date.now() < deadline; round++) {
      if (await readOutput()) break;
      const tree = await readTree(ctx.client, name);
      // The root refusing its parameters will not change by waiting.
      const refused = treeProblems(tree).find((p) => p.startsWith(`${name}: parameters`));
      if (refused !== undefined) throw new HoxError('HOX_BAD_REQUEST', `app '${name}' refused the command: ${refused}`);
      const now = tree.instance_list.find((i) => i.instance_guid === replica.instance_guid);
      const seen = runOf(now, id);
      if (seen?.state === 'exited') {
        status = seen;
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, RUN_POLL_MS));
    }
    if (logged !== undefined && status === undefined) {
      status = {
        id,
        state: 'exited',
        release: app.release,
        pid: null,
        // Not known from the log; it ran, since the runner logged its exit.
        started_at: null,
        finished_at: null,
        exit_code: logged.exit_code,
        signal: logged.signal,
        error: logged.limited ? `stopped after its ${options.timeoutS} s limit` : null,
      };
    } else if (status !== undefined && status.started_at !== null) {
      // Its last lines: the runner logs `[run.<id>] exited` after them.
      const tailDeadline = Date.now() + RUN_TAIL_MS;
      for (let i = 0; i < 20 && Date.now() < tailDeadline; i++) {
        if (await readOutput()) break;
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    }
  } finally {
    if (!stop) await remove();
  }
  if (stop) return;
  const shown = `\`${argv.join(' ')}\``;
  if (status === undefined)
    throw new HoxError(
      'HOX_CONFLICT',
      `${name}: ${shown} on ${replica.title}: no exit reported within ${options.timeoutS} s and 2 min more; it was stopped`,
    );
  if (status.error !== null && status.started_at === null && logged === undefined)
    throw new HoxError('HOX_CONFLICT', `${name}: ${shown} did not run on ${replica.title}: ${status.error}`);
  // Stopped at its time limit: 124, as timeout(1) exits.
  if (status.error !== null) throw new CommandExit(`${name}: ${shown} on ${replica.title}: ${status.error}`, 124);
  if (status.exit_code === 0) return;
  if (status.exit_code !== null)
    throw new CommandExit(`${name}: ${shown} exited with code ${status.exit_code}`, status.exit_code);
  throw new CommandExit(`${name}: ${shown} was killed by ${status.signal ?? 'a signal'}`, 1);
}
