/**
 * bench/master: drives a real master over HTTP with simulated compute nodes
 * and users, on SQLite and on PostgreSQL, and prints requests/s and p50/p99
 * latency per kind of call.
 *
 *   npx tsx bench/master/run.ts [--nodes 1000,10000] [--stores sqlite,postgres]
 *                               [--transports tls,plain] [--duration-s 20] [--concurrency 32] [--json]
 *
 * Transports: `tls` is what the product speaks (HTTPS with a certificate of the platform CA, and each node
 * presents its own client certificate: mutual TLS, every call's certificate looked up); `plain` is the
 * in-process test masters' plain HTTP, run in the same invocation to give the cost of TLS.
 *
 * Per store and node count:
 *  1. setup (timed, not measured): the master starts in a child process
 *     (master-process.ts, so the load generator never shares its event loop);
 *     N nodes register (one-time registration token → own node token), format
 *     10 partitions each and get one software release supplied; then users
 *     request instances until about half the partitions are busy (or the
 *     allocation cap/budget is reached, which the output says).
 *  2. mixed phase (--duration-s): `--concurrency` workers each loop over a
 *     weighted mix: node sync (listPartitionDocuments + listSoftwareInstallations),
 *     node report (reportInstanceState 'started' for one of its instances),
 *     user request of a new title (allocates) or re-request of an existing one
 *     with changed parameters (update).
 *  3. sync-only phase (--sync-only-s): only node syncs, to measure the
 *     master's sync capacity on its own.
 *
 * The SlapOS comparison (nodes one master could serve at one sync per minute,
 * = sync/s × 60) is derived from the measured sync rate and labelled so.
 */
import { log, machineCpuTimes, markdownTable, percentileOfSorted } from '../support/report.js';
import { fork, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { MasterClient, isNotReady } from '../../src/client/master-client.js';
import { HoxError } from '../../src/shared/errors.js';
import { createDatabase, startPostgres, type PostgresServer } from '../../src/testing/postgres-server.js';
import { addTestNode } from '../../src/testing/test-master.js';

type StoreKind = 'sqlite' | 'postgres';
type Transport = 'tls' | 'plain';

const RELEASE = 'https://releases.example.org/bench-1.0.tar.gz';
const SOFTWARE_TYPE = 'default';
/** Mixed-phase weights (sum 1): what share of the operations each kind is. */
const MIX = { sync: 0.6, report: 0.2, requestNew: 0.05, requestUpdate: 0.15 } as const;
/** SlapOS nodes poll their master once a minute. */
const SLAPOS_SYNC_PERIOD_S = 60;
/** Hard cap on operations per worker and phase: the loops end by time, this only bounds them. */
const MAX_OPS_PER_WORKER = 10_000_000;
const READY_TIMEOUT_MS = 120_000;
const STOP_TIMEOUT_MS = 30_000;

// ---------------------------------------------------------------- options

interface Options {
  nodes: number[];
  stores: StoreKind[];
  transports: Transport[];
  partitions: number;
  durationS: number;
  syncOnlyS: number;
  concurrency: number;
  setupConcurrency: number;
  allocConcurrency: number;
  busyFraction: number;
  maxAlloc: number;
  allocBudgetS: number;
  allocMode: 'pinned' | 'any';
  users: number;
  json: boolean;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      nodes: { type: 'string', default: '1000,10000' },
      stores: { type: 'string', default: 'sqlite,postgres' },
      transports: { type: 'string', default: 'tls' },
      partitions: { type: 'string', default: '10' },
      'duration-s': { type: 'string', default: '20' },
      'sync-only-s': { type: 'string' },
      concurrency: { type: 'string', default: '32' },
      'setup-concurrency': { type: 'string', default: '16' },
      'alloc-concurrency': { type: 'string', default: '8' },
      'busy-fraction': { type: 'string', default: '0.5' },
      'max-alloc': { type: 'string', default: '20000' },
      'alloc-budget-s': { type: 'string', default: '240' },
      'alloc-mode': { type: 'string', default: 'pinned' },
      users: { type: 'string', default: '10' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(
      [
        'usage: npx tsx bench/master/run.ts [options]',
        '  --nodes 1000,10000        node counts to run',
        '  --stores sqlite,postgres  stores to run',
        '  --transports tls          tls (HTTPS, nodes with client certificates) and/or plain (HTTP): the cost of TLS',
        '  --partitions 10           partitions per node',
        '  --duration-s 20           length of the measured mixed phase',
        '  --sync-only-s D/2         length of the sync-only phase (0 to skip)',
        '  --concurrency 32          load-generator workers in the measured phases',
        '  --setup-concurrency 16    parallel node registrations in setup',
        '  --alloc-concurrency 8     parallel instance requests in setup',
        '  --busy-fraction 0.5       share of partitions to allocate in setup',
        '  --max-alloc 20000         cap on setup allocations (fixed fraction beyond it)',
        '  --alloc-budget-s 240      time budget for setup allocations (safety net)',
        '  --alloc-mode pinned       setup requests pin each instance to a node (SLA computer_guid, round-robin);',
        "                            'any' lets the allocator choose (slow at 10,000 nodes: it scans free partitions)",
        '  --users 10                users requesting instances',
        '  --json                    print the results as JSON (progress stays on stderr)',
        '',
      ].join('\n'),
    );
    process.exit(0);
  }
  const int = (name: string, text: string, min: number): number => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}, got '${text}'`);
    return n;
  };
  const num = (name: string, text: string, min: number, max: number): number => {
    const n = Number(text);
    if (!Number.isFinite(n) || n < min || n > max)
      throw new Error(`--${name} must be a number in [${min}, ${max}], got '${text}'`);
    return n;
  };
  const nodes = values.nodes.split(',').map((s) => int('nodes', s.trim(), 1));
  const stores = values.stores.split(',').map((s) => {
    const kind = s.trim();
    if (kind !== 'sqlite' && kind !== 'postgres')
      throw new Error(`--stores: unknown store '${kind}' (sqlite, postgres)`);
    return kind;
  });
  const transports = values.transports.split(',').map((s) => {
    const kind = s.trim();
    if (kind !== 'tls' && kind !== 'plain') throw new Error(`--transports: unknown transport '${kind}' (tls, plain)`);
    return kind;
  });
  const allocMode = (text: string): 'pinned' | 'any' => {
    if (text !== 'pinned' && text !== 'any') throw new Error(`--alloc-mode must be 'pinned' or 'any', got '${text}'`);
    return text;
  };
  const durationS = num('duration-s', values['duration-s'], 0.5, 3600);
  return {
    nodes,
    stores,
    transports,
    partitions: int('partitions', values.partitions, 1),
    durationS,
    syncOnlyS: values['sync-only-s'] === undefined ? durationS / 2 : num('sync-only-s', values['sync-only-s'], 0, 3600),
    concurrency: int('concurrency', values.concurrency, 1),
    setupConcurrency: int('setup-concurrency', values['setup-concurrency'], 1),
    allocConcurrency: int('alloc-concurrency', values['alloc-concurrency'], 1),
    busyFraction: num('busy-fraction', values['busy-fraction'], 0, 1),
    maxAlloc: int('max-alloc', values['max-alloc'], 0),
    allocBudgetS: num('alloc-budget-s', values['alloc-budget-s'], 1, 36_000),
    allocMode: allocMode(values['alloc-mode']),
    users: int('users', values.users, 1),
    json: values.json,
  };
}

// ---------------------------------------------------------------- helpers

let interrupted = false;
const loadAtStart = os.loadavg()[0] ?? Number.NaN;

function fmtS(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

function errorCode(error: unknown): string {
  if (error instanceof HoxError) return error.code;
  return error instanceof Error ? error.name : 'unknown';
}

/** Runs `work(i)` for i in [0, count) with at most `concurrency` in flight; stops early at `deadline` or on Ctrl-C. */
async function forEachBounded(
  count: number,
  concurrency: number,
  work: (i: number) => Promise<void>,
  options: { deadline?: number; onDone?: (done: number) => void } = {},
): Promise<number> {
  let next = 0;
  let done = 0;
  const worker = async (): Promise<void> => {
    while (next < count && !interrupted && (options.deadline === undefined || performance.now() < options.deadline)) {
      const i = next;
      next += 1;
      await work(i);
      done += 1;
      options.onDone?.(done);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, Math.max(count, 1)) }, worker));
  return done;
}

/** Logs "label: k/n (p%)" each time another ~10% is done. */
function progress(label: string, total: number, started: number): (done: number) => void {
  let nextStep = 1;
  return (done) => {
    if (total <= 0) return;
    while (done * 10 >= nextStep * total && nextStep <= 10) {
      log(`  ${label}: ${done}/${total} (${nextStep * 10}%) after ${fmtS(performance.now() - started)}`);
      nextStep += 1;
    }
  };
}

class Recorder {
  private latencies: number[] = [];
  errors = 0;
  readonly errorCodes = new Map<string, number>();
  firstError: string | undefined;

  ok(ms: number): void {
    this.latencies.push(ms);
  }

  fail(error: unknown): void {
    this.errors += 1;
    const code = errorCode(error);
    this.errorCodes.set(code, (this.errorCodes.get(code) ?? 0) + 1);
    this.firstError ??= error instanceof Error ? `${code}: ${error.message}` : String(error);
  }

  merge(other: Recorder): void {
    for (const v of other.latencies) this.latencies.push(v);
    this.errors += other.errors;
    for (const [code, n] of other.errorCodes) this.errorCodes.set(code, (this.errorCodes.get(code) ?? 0) + n);
    this.firstError ??= other.firstError;
  }

  stats(op: string, seconds: number): OpStats {
    const sorted = Float64Array.from(this.latencies).sort();
    return {
      op,
      count: sorted.length,
      errors: this.errors,
      rps: sorted.length / seconds,
      p50Ms: percentileOfSorted(sorted, 0.5),
      p99Ms: percentileOfSorted(sorted, 0.99),
      ...(this.errors > 0 ? { errorCodes: Object.fromEntries(this.errorCodes), firstError: this.firstError } : {}),
    };
  }
}

interface OpStats {
  op: string;
  /** Successful operations. */
  count: number;
  errors: number;
  /** Successful operations per second of the phase. */
  rps: number;
  p50Ms: number;
  p99Ms: number;
  errorCodes?: Record<string, number>;
  firstError?: string | undefined;
}

interface PhaseResult {
  phase: 'mixed' | 'sync-only';
  seconds: number;
  ops: OpStats[];
  /** Master process CPU time / wall time (1.0 = one core fully busy). */
  masterCpuCores: number;
  /** Load-generator (this process) CPU time / wall time. */
  driverCpuCores: number;
  /** Whole-machine CPU busy share over the phase (all cores, all processes, including other users of a shared machine). */
  machineBusy: number;
}

interface ConfigResult {
  store: StoreKind;
  transport: Transport;
  nodes: number;
  partitionsPerNode: number;
  setup: {
    nodesSeconds: number;
    /** Every node's first call (over TLS: its handshake), `--concurrency` at once. */
    connectSeconds: number;
    allocTarget: number;
    allocRequested: number;
    allocated: number;
    allocErrors: number;
    allocSeconds: number;
    allocPerSecond: number;
    busyShare: number;
    allocLimitedBy: 'none' | 'max-alloc' | 'alloc-budget';
    totalSeconds: number;
  };
  phases: PhaseResult[];
  derived: {
    note: string;
    mixedSyncPerSecond: number;
    nodesAtSlaposRateMixed: number;
    syncOnlyPerSecond: number | null;
    nodesAtSlaposRateSyncOnly: number | null;
  };
}

// ---------------------------------------------------------------- master process

interface MasterHandle {
  url: string;
  adminToken: string;
  /** With TLS: the platform CA's roots. */
  ca?: string;
  cpuSeconds(): Promise<number>;
  stop(): Promise<void>;
}

async function startMasterProcess(databaseUrl: string | undefined, transport: Transport): Promise<MasterHandle> {
  const script = fileURLToPath(new URL('./master-process.ts', import.meta.url));
  // The child inherits process.execArgv, i.e. tsx's loader.
  const child: ChildProcess = fork(script, [], {
    env: { ...process.env, HOX_BENCH_DATABASE_URL: databaseUrl ?? '', HOX_BENCH_TLS: transport === 'tls' ? '1' : '' },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    if (child.connected) child.send({ cmd: 'stop' });
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  };
  try {
    const ready = await new Promise<{ url: string; adminToken: string; ca?: string }>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`master did not start within ${READY_TIMEOUT_MS} ms`)),
        READY_TIMEOUT_MS,
      );
      child.on('message', (m: { type?: string; url?: string; adminToken?: string; ca?: string; message?: string }) => {
        if (m.type === 'ready' && m.url !== undefined && m.adminToken !== undefined) {
          clearTimeout(timer);
          resolve({ url: m.url, adminToken: m.adminToken, ...(m.ca === undefined ? {} : { ca: m.ca }) });
        } else if (m.type === 'error') {
          clearTimeout(timer);
          reject(new Error(`master failed to start: ${m.message ?? 'unknown error'}`));
        }
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`master process exited during startup (${code ?? signal ?? 'unknown'})`));
      });
    });
    const cpuSeconds = (): Promise<number> =>
      new Promise<number>((resolve, reject) => {
        const timer = setTimeout(() => {
          child.off('message', onMessage);
          reject(new Error('master process did not answer a cpu query'));
        }, 30_000);
        const onMessage = (m: { type?: string; userUs?: number; systemUs?: number }): void => {
          if (m.type !== 'cpu') return;
          clearTimeout(timer);
          child.off('message', onMessage);
          resolve(((m.userUs ?? 0) + (m.systemUs ?? 0)) / 1e6);
        };
        child.on('message', onMessage);
        child.send({ cmd: 'cpu' });
      });
    return { ...ready, cpuSeconds, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

// ---------------------------------------------------------------- simulation state

interface SimNode {
  id: string;
  client: MasterClient;
}

interface BusyInstance {
  node: SimNode;
  guid: string;
}

interface Tree {
  user: MasterClient;
  title: string;
}

interface World {
  nodes: SimNode[];
  nodeById: Map<string, SimNode>;
  users: MasterClient[];
  busy: BusyInstance[];
  trees: Tree[];
  counter: number;
}

function pick<T>(items: readonly T[]): T {
  const item = items[Math.floor(Math.random() * items.length)];
  if (item === undefined) throw new Error('pick from an empty list');
  return item;
}

/** Requests a new root instance; `pinTo` adds SLA `computer_guid` (SlapOS's way to place on a given node). */
async function requestNew(world: World, user: MasterClient, title: string, pinTo?: string): Promise<void> {
  const answer = await user.call('requestInstance', {
    title,
    software_release_uri: RELEASE,
    software_type: SOFTWARE_TYPE,
    parameters: { rev: 0 },
    ...(pinTo === undefined ? {} : { sla_parameters: { computer_guid: pinTo } }),
  });
  if (isNotReady(answer)) throw new Error(`request '${title}' answered not-ready: ${answer.message}`);
  world.trees.push({ user, title });
  const node = world.nodeById.get(answer.computer_guid);
  if (node !== undefined) world.busy.push({ node, guid: answer.instance_guid });
}

// ---------------------------------------------------------------- one configuration

async function runConfig(
  opts: Options,
  store: StoreKind,
  nodeCount: number,
  pg: PostgresServer | undefined,
  transport: Transport,
): Promise<ConfigResult> {
  const label = `${store} × ${nodeCount} nodes over ${transport === 'tls' ? 'HTTPS (mutual TLS)' : 'plain HTTP'}`;
  log(`\n=== ${label} × ${opts.partitions} partitions ===`);
  const setupStart = performance.now();
  let databaseUrl: string | undefined;
  if (store === 'postgres') {
    if (pg === undefined) throw new Error('PostgreSQL is not running');
    databaseUrl = await createDatabase(pg, `bench_master_${nodeCount}_${Date.now()}`);
  }
  const master = await startMasterProcess(databaseUrl, transport);
  try {
    const admin = new MasterClient({
      url: master.url,
      token: master.adminToken,
      timeoutMs: 120_000,
      ...(master.ca === undefined ? {} : { ca: master.ca }),
    });
    const world: World = { nodes: [], nodeById: new Map(), users: [], busy: [], trees: [], counter: 0 };

    // --- setup 1: nodes
    log(
      `setup: registering ${nodeCount} nodes (register, format ${opts.partitions} partitions, supply 1 release; ${opts.setupConcurrency} in parallel)`,
    );
    const nodesStart = performance.now();
    const nodeSlots: (SimNode | undefined)[] = new Array<SimNode | undefined>(nodeCount);
    await forEachBounded(
      nodeCount,
      opts.setupConcurrency,
      async (i) => {
        const id = `bench-node-${String(i).padStart(6, '0')}`;
        const node = await addTestNode(admin, id, { partitions: opts.partitions, releases: [RELEASE] });
        if (transport === 'tls') {
          // As a real node: its own certificate, presented on every call from then on.
          const issued = await node.client.call('nodeCertificate', { computer_guid: id });
          node.client.useClientCertificate({ cert: issued.certificate, key: issued.key });
        }
        nodeSlots[i] = { id, client: node.client };
      },
      { onDone: progress('nodes', nodeCount, nodesStart) },
    );
    if (interrupted) throw new Error('interrupted');
    for (const node of nodeSlots) {
      if (node === undefined) continue;
      world.nodes.push(node);
      world.nodeById.set(node.id, node);
    }
    const nodesSeconds = (performance.now() - nodesStart) / 1000;
    log(`setup: ${world.nodes.length} nodes ready in ${nodesSeconds.toFixed(1)} s`);

    for (let u = 0; u < opts.users; u += 1) {
      const { token } = await admin.call('createUser', { name: `bench-user-${u}` });
      world.users.push(admin.withToken(token));
    }

    // --- setup 2: allocations
    const allocTarget = Math.round(nodeCount * opts.partitions * opts.busyFraction);
    const allocRequested = Math.min(allocTarget, opts.maxAlloc);
    log(
      `setup: requesting ${allocRequested} instances as ${opts.users} users (${opts.allocConcurrency} in parallel, ` +
        `${opts.allocMode === 'pinned' ? 'each pinned round-robin to a node with SLA computer_guid' : 'placed by the allocator'})` +
        (allocRequested < allocTarget
          ? ` — capped by --max-alloc: ${allocRequested} of the ${allocTarget} that would make ${Math.round(opts.busyFraction * 100)}% of partitions busy`
          : ''),
    );
    const allocStart = performance.now();
    const allocDeadline = allocStart + opts.allocBudgetS * 1000;
    const allocRec = new Recorder();
    await forEachBounded(
      allocRequested,
      opts.allocConcurrency,
      async (i) => {
        try {
          const pinTo = opts.allocMode === 'pinned' ? world.nodes[i % world.nodes.length]?.id : undefined;
          await requestNew(world, world.users[i % world.users.length] ?? admin, `setup-${i}`, pinTo);
        } catch (error) {
          allocRec.fail(error);
        }
      },
      { deadline: allocDeadline, onDone: progress('instances', allocRequested, allocStart) },
    );
    if (interrupted) throw new Error('interrupted');
    const allocSeconds = (performance.now() - allocStart) / 1000;
    const allocated = world.busy.length;
    const allocLimitedBy: ConfigResult['setup']['allocLimitedBy'] =
      allocated + allocRec.errors < allocRequested
        ? 'alloc-budget'
        : allocRequested < allocTarget
          ? 'max-alloc'
          : 'none';
    const busyShare = allocated / (nodeCount * opts.partitions);
    log(
      `setup: ${allocated} instances allocated in ${allocSeconds.toFixed(1)} s (${(allocated / allocSeconds).toFixed(0)}/s), ` +
        `${(busyShare * 100).toFixed(1)}% of partitions busy` +
        (allocRec.errors > 0 ? `, ${allocRec.errors} failed (first: ${allocRec.firstError})` : '') +
        (allocLimitedBy === 'alloc-budget' ? ` — stopped at the ${opts.allocBudgetS} s --alloc-budget-s` : '') +
        (allocLimitedBy === 'max-alloc'
          ? ` — fixed fraction (--max-alloc ${opts.maxAlloc}) instead of ${Math.round(opts.busyFraction * 100)}%`
          : ''),
    );
    if (world.busy.length === 0) throw new Error('no instance could be allocated; cannot measure reports');
    const totalSetupSeconds = (performance.now() - setupStart) / 1000;
    log(`setup: total ${totalSetupSeconds.toFixed(1)} s (not measured)`);

    // --- measured phases
    // Every node's first call opens its connection: over TLS a full handshake (its certificate verified). Real
    // nodes keep their connection (the master keeps idle ones 72 s), so the handshakes are timed here, apart.
    const warmStart = performance.now();
    await forEachBounded(world.nodes.length, opts.concurrency, async (i) => {
      const node = world.nodes[i]!;
      await node.client.call('listSoftwareInstallations', { computer_guid: node.id });
    });
    const connectSeconds = (performance.now() - warmStart) / 1000;
    log(`setup: every node connected (first call) in ${connectSeconds.toFixed(1)} s, ${opts.concurrency} at once`);

    const phases: PhaseResult[] = [];
    phases.push(await measure(opts, world, master, 'mixed', opts.durationS));
    if (opts.syncOnlyS > 0 && !interrupted)
      phases.push(await measure(opts, world, master, 'sync-only', opts.syncOnlyS));

    const syncOf = (phase: PhaseResult | undefined): number | null =>
      phase?.ops.find((o) => o.op === 'sync')?.rps ?? null;
    const mixedSync = syncOf(phases[0]) ?? 0;
    const syncOnly = syncOf(phases[1]);
    return {
      store,
      transport,
      nodes: nodeCount,
      partitionsPerNode: opts.partitions,
      setup: {
        nodesSeconds,
        connectSeconds,
        allocTarget,
        allocRequested,
        allocated,
        allocErrors: allocRec.errors,
        allocSeconds,
        allocPerSecond: allocated / allocSeconds,
        busyShare,
        allocLimitedBy,
        totalSeconds: totalSetupSeconds,
      },
      phases,
      derived: {
        note: `DERIVED, not measured: nodes = sync/s × ${SLAPOS_SYNC_PERIOD_S} (SlapOS nodes poll once every ${SLAPOS_SYNC_PERIOD_S} s)`,
        mixedSyncPerSecond: mixedSync,
        nodesAtSlaposRateMixed: Math.floor(mixedSync * SLAPOS_SYNC_PERIOD_S),
        syncOnlyPerSecond: syncOnly,
        nodesAtSlaposRateSyncOnly: syncOnly === null ? null : Math.floor(syncOnly * SLAPOS_SYNC_PERIOD_S),
      },
    };
  } finally {
    await master.stop();
  }
}

type OpKind = 'sync' | 'report' | 'request.new' | 'request.update';

async function measure(
  opts: Options,
  world: World,
  master: MasterHandle,
  phase: PhaseResult['phase'],
  seconds: number,
): Promise<PhaseResult> {
  log(`measure: ${phase} phase, ${seconds} s, ${opts.concurrency} workers`);
  const kinds: OpKind[] = ['sync', 'report', 'request.new', 'request.update'];
  const recorders = new Map<OpKind, Recorder>(kinds.map((k) => [k, new Recorder()]));
  const rec = (k: OpKind): Recorder => recorders.get(k) as Recorder;
  const choose = (): OpKind => {
    if (phase === 'sync-only') return 'sync';
    const r = Math.random();
    if (r < MIX.sync) return 'sync';
    if (r < MIX.sync + MIX.report) return 'report';
    if (r < MIX.sync + MIX.report + MIX.requestNew) return 'request.new';
    return 'request.update';
  };
  const run = async (kind: OpKind): Promise<void> => {
    switch (kind) {
      case 'sync': {
        const node = pick(world.nodes);
        await node.client.call('listPartitionDocuments', { computer_guid: node.id });
        await node.client.call('listSoftwareInstallations', { computer_guid: node.id });
        return;
      }
      case 'report': {
        const { node, guid } = pick(world.busy);
        await node.client.call('reportInstanceState', { instance_guid: guid, reported_state: 'started' });
        return;
      }
      case 'request.new': {
        world.counter += 1;
        await requestNew(world, pick(world.users), `${phase}-${world.counter}`);
        return;
      }
      case 'request.update': {
        world.counter += 1;
        const tree = pick(world.trees);
        const answer = await tree.user.call('requestInstance', {
          title: tree.title,
          software_release_uri: RELEASE,
          software_type: SOFTWARE_TYPE,
          parameters: { rev: world.counter },
        });
        if (isNotReady(answer)) throw new Error(`re-request '${tree.title}' answered not-ready`);
        return;
      }
    }
  };

  const cpu0 = await master.cpuSeconds();
  const m0 = machineCpuTimes();
  const d0 = process.cpuUsage();
  const start = performance.now();
  const deadline = start + seconds * 1000;
  const worker = async (): Promise<void> => {
    for (let n = 0; n < MAX_OPS_PER_WORKER && !interrupted && performance.now() < deadline; n += 1) {
      const kind = choose();
      const t0 = performance.now();
      try {
        await run(kind);
        rec(kind).ok(performance.now() - t0);
      } catch (error) {
        rec(kind).fail(error);
      }
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, worker));
  const wall = (performance.now() - start) / 1000;
  const d1 = process.cpuUsage(d0);
  const cpu1 = await master.cpuSeconds();
  const m1 = machineCpuTimes();

  const ops: OpStats[] = [];
  for (const kind of kinds) {
    if (phase === 'sync-only' && kind !== 'sync') continue;
    ops.push(rec(kind).stats(kind, wall));
  }
  if (phase === 'mixed') {
    const all = new Recorder();
    all.merge(rec('request.new'));
    all.merge(rec('request.update'));
    ops.push(all.stats('request (new+update)', wall));
  }
  const result: PhaseResult = {
    phase,
    seconds: wall,
    ops,
    masterCpuCores: (cpu1 - cpu0) / wall,
    driverCpuCores: (d1.user + d1.system) / 1e6 / wall,
    machineBusy: m1.total > m0.total ? (m1.busy - m0.busy) / (m1.total - m0.total) : Number.NaN,
  };
  for (const o of ops) {
    log(
      `  ${o.op.padEnd(22)} ${String(o.count).padStart(7)} ok ${String(o.errors).padStart(5)} err ` +
        `${o.rps.toFixed(1).padStart(8)} /s  p50 ${o.p50Ms.toFixed(1)} ms  p99 ${o.p99Ms.toFixed(1)} ms` +
        (o.firstError === undefined ? '' : `  (first error: ${o.firstError})`),
    );
  }
  log(
    `  CPU: master process ${result.masterCpuCores.toFixed(2)} cores, load generator ${result.driverCpuCores.toFixed(2)} cores; ` +
      `machine busy ${(result.machineBusy * 100).toFixed(0)}% of ${os.cpus().length} cores`,
  );
  return result;
}

// ---------------------------------------------------------------- output

function ms(v: number): string {
  return Number.isNaN(v) ? '-' : v < 10 ? v.toFixed(2) : v.toFixed(1);
}

function printReport(opts: Options, results: ConfigResult[]): void {
  const out: string[] = [];
  out.push(
    `bench/master — ${os.cpus().length} CPUs, Node ${process.version}, concurrency ${opts.concurrency}, ` +
      `mixed ${opts.durationS} s + sync-only ${opts.syncOnlyS} s, ${opts.partitions} partitions/node`,
  );
  out.push(
    `setup allocation: ${opts.allocMode === 'pinned' ? 'requests pinned round-robin to nodes (SLA computer_guid)' : 'placed by the allocator'}, ` +
      `target ${Math.round(opts.busyFraction * 100)}% of partitions busy, capped at --max-alloc ${opts.maxAlloc}; ` +
      `measured request.new is never pinned (the allocator picks the partition)`,
  );
  out.push(`1-minute load average at start: ${loadAtStart.toFixed(2)} (the machine may be shared)`);
  out.push(
    `mix: sync ${MIX.sync * 100}% (listPartitionDocuments + listSoftwareInstallations, counted as one), ` +
      `report ${MIX.report * 100}%, request.new ${MIX.requestNew * 100}%, request.update ${MIX.requestUpdate * 100}%`,
  );
  out.push('');
  out.push('Setup (not measured):');
  out.push(
    markdownTable(
      [
        'store, transport',
        'nodes',
        'allocation',
        'nodes setup s',
        'instances',
        'busy %',
        'alloc s',
        'alloc/s',
        'setup total s',
        'first call of every node s',
      ],
      results.map((r) => [
        `${r.store} ${r.transport}`,
        String(r.nodes),
        r.setup.allocLimitedBy === 'none'
          ? 'full'
          : r.setup.allocLimitedBy === 'max-alloc'
            ? 'capped (--max-alloc)'
            : 'cut (--alloc-budget-s)',
        r.setup.nodesSeconds.toFixed(1),
        String(r.setup.allocated),
        (r.setup.busyShare * 100).toFixed(1),
        r.setup.allocSeconds.toFixed(1),
        r.setup.allocPerSecond.toFixed(0),
        r.setup.totalSeconds.toFixed(1),
        r.setup.connectSeconds.toFixed(1),
      ]),
      3,
    ),
  );
  out.push('');
  out.push('Measured:');
  const rows: string[][] = [];
  for (const r of results) {
    for (const p of r.phases) {
      for (const o of p.ops) {
        rows.push([
          `${r.store} ${r.transport}`,
          String(r.nodes),
          `${p.phase}: ${o.op}`,
          String(o.count),
          String(o.errors),
          o.rps.toFixed(1),
          ms(o.p50Ms),
          ms(o.p99Ms),
        ]);
      }
    }
  }
  out.push(markdownTable(['store, transport', 'nodes', 'op', 'count', 'errors', 'req/s', 'p50 ms', 'p99 ms'], rows, 3));
  out.push('');
  out.push(
    'CPU during the measured phases (cores used by the master process and by the load generator; whole-machine busy share, PostgreSQL and other tenants included):',
  );
  out.push(
    markdownTable(
      ['store, transport', 'nodes', 'phase', 'master cores', 'load-gen cores', 'machine busy %'],
      results.flatMap((r) =>
        r.phases.map((p) => [
          `${r.store} ${r.transport}`,
          String(r.nodes),
          p.phase,
          p.masterCpuCores.toFixed(2),
          p.driverCpuCores.toFixed(2),
          (p.machineBusy * 100).toFixed(0),
        ]),
      ),
      3,
    ),
  );
  out.push('');
  out.push(
    `SlapOS comparison — DERIVED, not measured: nodes one master could serve at one sync per ${SLAPOS_SYNC_PERIOD_S} s = sync/s × ${SLAPOS_SYNC_PERIOD_S}`,
  );
  out.push(
    markdownTable(
      ['store, transport', 'nodes', 'basis', 'sync/s', 'nodes @ 1 sync/min (derived)'],
      results.flatMap((r) => {
        const rowsOut = [
          [
            `${r.store} ${r.transport}`,
            String(r.nodes),
            'mixed load',
            r.derived.mixedSyncPerSecond.toFixed(1),
            String(r.derived.nodesAtSlaposRateMixed),
          ],
        ];
        if (r.derived.syncOnlyPerSecond !== null)
          rowsOut.push([
            `${r.store} ${r.transport}`,
            String(r.nodes),
            'sync only',
            r.derived.syncOnlyPerSecond.toFixed(1),
            String(r.derived.nodesAtSlaposRateSyncOnly),
          ]);
        return rowsOut;
      }),
      3,
    ),
  );
  for (const r of results) {
    if (r.setup.allocLimitedBy !== 'none')
      out.push(
        `note: ${r.store} ${r.transport} × ${r.nodes}: ${r.setup.allocated} instances allocated (${(r.setup.busyShare * 100).toFixed(1)}% of partitions busy) ` +
          `instead of ${r.setup.allocTarget} (${Math.round(opts.busyFraction * 100)}%), ` +
          (r.setup.allocLimitedBy === 'max-alloc'
            ? `capped by --max-alloc ${opts.maxAlloc}`
            : `cut by --alloc-budget-s ${opts.allocBudgetS}`),
      );
  }
  process.stdout.write(`${out.join('\n')}\n`);
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  process.on('SIGINT', () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    log('interrupted: finishing the current step and stopping (Ctrl-C again to exit at once)');
  });
  const runStart = performance.now();
  const results: ConfigResult[] = [];
  let pg: PostgresServer | undefined;
  try {
    if (opts.stores.includes('postgres')) {
      log('starting PostgreSQL…');
      pg = await startPostgres();
      log(`PostgreSQL on port ${pg.port}`);
    }
    for (const store of opts.stores)
      for (const nodes of opts.nodes)
        for (const transport of opts.transports) {
          if (interrupted) break;
          results.push(await runConfig(opts, store, nodes, pg, transport));
        }
  } finally {
    await pg?.stop();
  }
  log(`\nwhole run: ${fmtS(performance.now() - runStart)}`);
  if (opts.json) {
    process.stdout.write(
      `${JSON.stringify(
        {
          machine: {
            loadAverageAtStart: loadAtStart,
            cpus: os.cpus().length,
            cpuModel: os.cpus()[0]?.model ?? null,
            node: process.version,
            platform: `${os.type()} ${os.release()}`,
          },
          options: opts,
          mix: MIX,
          slaposSyncPeriodS: SLAPOS_SYNC_PERIOD_S,
          results,
        },
        null,
        2,
      )}\n`,
    );
  } else {
    printReport(opts, results);
  }
}

main().catch((error: unknown) => {
  process.stderr.write(
    `bench/master failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exitCode = 1;
});
