/**
 * The node agent (`hox node`): registers, formats partitions, then converges
 * the machine towards the master — waiting on the master's change feed so a
 * request reaches it in milliseconds, with a periodic pass as a safety net.
 *
 * @example
 * const agent = createNodeAgent(resolveNodeAgentConfig({ masterUrl, dataDir, partitions: 4, registerToken }));
 * await agent.start();
 */
import { ArtifactCache } from './artifact-cache.js';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { MasterClient } from '../client/master-client.js';
import { refreshMasterRoots, trustMasterByPin } from '../client/pinned-ca.js';
import { matchesCaPin } from '../shared/pki/ca-pin.js';
import { readCertificateBundle } from '../shared/pki/x509.js';
import { HoxError } from '../shared/errors.js';
import { systemClock, type Clock } from '../shared/clock.js';
import type { NodeAgentConfig } from './agent-config.js';
import { readCredentials, writeCredentials, type NodeCredentials } from './credentials.js';
import { NodeCertificate } from './node-certificate.js';
import { formatPartitions, type FormattedPartition } from './format/partition-formatter.js';
import { partitionLayouts } from './format/partition-layout.js';
import { InstallError, Installer } from './install/installer.js';
import { LogRelay } from './log-relay.js';
import { promiseFailureMessages } from './instance-health.js';
import { partitionCgroup2Path } from './isolate/partition-cgroup.js';
import { NetworkIsolation } from './isolate/partition-firewall-node.js';
import { PartitionUsageMonitor } from './isolate/usage-monitor.js';
import { PartitionUsageReporter } from './isolate/usage-reporter.js';
import { reportNodeMetrics } from './node-metrics.js';
import { PartitionMetricsReader } from './partition-metrics.js';
import { retainedListReport } from './retained-report.js';
import { RetainedStore } from './retained-store.js';
import { PartitionProcessor } from './partition-processor.js';
import { PartitionSecretStore } from './partition-secret.js';
import { PartitionStateStore } from './partition-state.js';
import { PromiseReporter } from './promise/promise-reporter.js';
import { PromiseRunner } from './promise/promise-runner.js';
import { PublicationWatcher } from './publish/publication-watcher.js';
import { RuntimePublisher } from './publish/runtime-publisher.js';
import { Supervisor } from './supervise/supervisor.js';

export interface NodeAgent {
  /** Registers (first time), formats, adopts running services, starts converging. */
  start(): Promise<{ nodeId: string }>;
  /**
   * Stops converging. Services keep running (a restarted agent adopts them)
   * unless `stopServices` is set.
   */
  stop(options?: { stopServices?: boolean }): Promise<void>;
  /** One full convergence pass now (tests, CLI). */
  syncNow(): Promise<void>;
  readonly nodeId: string;
  readonly partitions: readonly FormattedPartition[];
}

export interface NodeAgentDeps {
  clock?: Clock;
  log?: (message: string, fields?: Record<string, unknown>) => void;
}

/** Where the built-in releases live, next to this module (dist/ or src/). */
export const BUILTIN_RELEASES_DIR = resolve(fileURLToPath(new URL('../releases', import.meta.url)));
/**
 * The hox package (dist/ or src/, and the node_modules the built-in releases' programs import from and
 * tsx's loader lives in): partition processes must see it, also when it was unpacked under /tmp.
 */
const PACKAGE_ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));

const WAIT_MS = 25_000;
const PROCESS_CONCURRENCY = 8;
/** A partition whose promises still fail after converging is converged again this much later. */
const FAILING_RETRY_MS = 30_000;

export function createNodeAgent(config: NodeAgentConfig, deps: NodeAgentDeps = {}): NodeAgent {
  const clock = deps.clock ?? systemClock;
  const log = deps.log ?? (() => undefined);
  let nodeId = '';
  let client: MasterClient | undefined;
  let nodeCertificate: NodeCertificate | undefined;
  let certificateTimer: NodeJS.Timeout | undefined;
  let partitions: FormattedPartition[] = [];
  let processor: PartitionProcessor | undefined;
  // Outside the partition (which its user may rearrange) and owned by the agent.
  const logDir = (partitionId: string): string => join(config.dataDir, 'logs', partitionId);
  const installer = new Installer({
    softwareDir: join(config.dataDir, 'software'),
    builtinDir: config.builtinReleasesDir ?? BUILTIN_RELEASES_DIR,
  });
  const states = new PartitionStateStore(join(config.dataDir, 'state'));
  /** The instance a partition hosts (not destroyed), or undefined. */
  const instanceOn = async (partitionId: string): Promise<string | undefined> => {
    const state = await states.read(partitionId);
    return state === undefined || state.destroyed === true ? undefined : state.instanceGuid;
  };
  const secrets = new PartitionSecretStore(join(config.dataDir, 'state'));
  const retained = new RetainedStore({
    dir: join(config.dataDir, 'retained'),
    retentionMs: config.retentionMs,
    clock,
    log,
  });
  /** When the retained sets are next swept and reported (at the first pass, then every interval). */
  let retainedSweepAtMs = 0;
  let retainedTimer: NodeJS.Timeout | undefined;
  let metricsTimer: NodeJS.Timeout | undefined;
  const forced = new Set<string>();
  const installing = new Set<string>();
  const failed = new Set<string>();
  /** Partitions being converged right now. */
  const converging = new Set<string>();
  let supervisor: Supervisor | undefined;
  let promises: PromiseRunner | undefined;
  let promiseReporter: PromiseReporter | undefined;
  let network: NetworkIsolation | undefined;
  /** Squatters found on a partition's address or ports, reported with its promises. */
  const networkProblems = (partitionId: string): string[] =>
    (network?.problems(partitionId) ?? []).map((problem) => `promise network: ${problem}`);
  let usage: PartitionUsageMonitor | undefined;
  let usageReporter: PartitionUsageReporter | undefined;
  let logRelay: LogRelay | undefined;
  const publisher = new RuntimePublisher({
    watcher: new PublicationWatcher({ log }),
    otherFailures: (partitionId) => [
      ...promiseFailureMessages(promises?.results(partitionId) ?? []),
      ...networkProblems(partitionId),
    ],
    log,
  });
  let stopped = false;
  const abort = new AbortController();
  let loopDone: Promise<void> | undefined;
  let syncing: Promise<void> | undefined;
  let syncAgain = false;

  /** The roots the master's certificate must chain to: given, learnt through the pin, or kept from registration. */
  async function masterCa(kept: string | undefined): Promise<string | undefined> {
    if (config.masterCa !== undefined) return config.masterCa;
    if (config.masterCaPin !== undefined) {
      // Already trusted by that pin (a service restarted with the same flags): no need to reach the master first.
      const pin = config.masterCaPin;
      if (kept !== undefined && readCertificateBundle(kept).some((root) => matchesCaPin(root, pin))) return kept;
      return await trustMasterByPin(config.masterUrl, pin);
    }
    return kept;
  }

  async function register(): Promise<NodeCredentials> {
    const existing = await readCredentials(config.dataDir);
    if (existing !== undefined) {
      if (config.nodeId !== undefined && config.nodeId !== existing.nodeId)
        throw new HoxError(
          'HOX_CONFLICT',
          `data dir ${config.dataDir} belongs to node '${existing.nodeId}', not '${config.nodeId}'`,
        );
      const ca = await masterCa(existing.masterCa);
      if (ca === existing.masterCa) return existing;
      // A new CA given (a rotated root, a master moved behind another certificate): kept for the next start.
      const updated = { ...existing, ...(ca === undefined ? {} : { masterCa: ca }) };
      await writeCredentials(config.dataDir, updated);
      return updated;
    }
    if (config.registerToken === undefined)
      throw new HoxError(
        'HOX_UNAUTHENTICATED',
        `node is not registered yet: give it a registration token with --register-token-file FILE or HOX_REGISTER_TOKEN (data dir ${config.dataDir})`,
      );
    const wanted =
      config.nodeId ??
      hostname()
        .replace(/[^A-Za-z0-9_.-]/g, '-')
        .slice(0, 63);
    const ca = await masterCa(undefined);
    const answer = await new MasterClient({
      url: config.masterUrl,
      token: config.registerToken,
      ...(ca === undefined ? {} : { ca }),
    }).call('registerNode', {
      computer_guid: wanted,
      ...(config.networkGuid === undefined ? {} : { network_guid: config.networkGuid }),
    });
    const credentials: NodeCredentials = {
      masterUrl: config.masterUrl,
      nodeId: answer.computer_guid,
      token: answer.token,
      ...(ca === undefined ? {} : { masterCa: ca }),
    };
    await writeCredentials(config.dataDir, credentials);
    log(`registered as compute node '${answer.computer_guid}'`);
    return credentials;
  }

  /**
   * The master's roots as it serves them now, over a connection verified with the kept ones: after a root
   * rotation the node learns the new root at its next start and keeps it (the cross-certificate that bridges
   * old and new leaves the bundle a year later). A CA given on the command line is the operator's and stays as
   * given. Never fatal: on any failure the kept roots serve as before.
   */
  async function refreshRoots(credentials: NodeCredentials): Promise<NodeCredentials> {
    const kept = credentials.masterCa;
    if (kept === undefined || config.masterCa !== undefined || !config.masterUrl.startsWith('https:'))
      return credentials;
    try {
      const current = await refreshMasterRoots(config.masterUrl, kept);
      if (current === null) return credentials;
      const updated = { ...credentials, masterCa: current };
      await writeCredentials(config.dataDir, updated);
      log(`the master's CA roots changed (a rotation): now trusting ${readCertificateBundle(current).length} root(s)`);
      return updated;
    } catch (error) {
      log(`could not check the master's CA roots: ${String(error)}`);
      return credentials;
    }
  }

  async function syncSoftware(c: MasterClient): Promise<void> {
    const list = (await c.call('listSoftwareStatus', { computer_guid: nodeId })).result_list;
    for (const s of list) {
      const url = s.software_release_uri;
      if (s.state === 'destroyed') {
        await installer.remove(url);
        await c.call('reportSoftwareState', {
          computer_guid: nodeId,
          software_release_uri: url,
          reported_state: 'destroyed',
        });
        continue;
      }
      if (installer.isInstalled(url)) {
        if (s.reported_state !== 'available')
          await c.call('reportSoftwareState', {
            computer_guid: nodeId,
            software_release_uri: url,
            reported_state: 'available',
          });
        continue;
      }
      // A failure is retried after a new supply (the master clears the error) or a restart of the agent.
      if (installing.has(url) || (failed.has(url) && s.reported_state === 'error')) continue;
      failed.delete(url);
      installing.add(url);
      void (async () => {
        try {
          await c.call('reportSoftwareState', {
            computer_guid: nodeId,
            software_release_uri: url,
            reported_state: 'building',
          });
          await installer.install(url);
          await c.call('reportSoftwareState', {
            computer_guid: nodeId,
            software_release_uri: url,
            reported_state: 'available',
          });
          log(`software release '${url}' installed`);
        } catch (error) {
          failed.add(url);
          const message = error instanceof InstallError ? `${error.message}\n${error.logTail}` : String(error);
          log(`software release '${url}': ${message}`);
          await c
            .call('reportSoftwareError', {
              computer_guid: nodeId,
              software_release_uri: url,
              message: message.slice(-60_000),
            })
            .catch(() => undefined);
        } finally {
          installing.delete(url);
          void requestSync();
        }
      })();
    }
  }

  async function syncPartitions(c: MasterClient, p: PartitionProcessor): Promise<void> {
    const docs = (await c.call('listPartitionDocuments', { computer_guid: nodeId })).result_list;
    const byId = new Map(partitions.map((part) => [part.partitionId, part]));
    const work: (() => Promise<void>)[] = [];
    for (const doc of docs) {
      const partition = byId.get(doc.compute_partition_id);
      if (partition === undefined) continue;
      const force = forced.delete(partition.partitionId);
      if (!(await p.needsProcessing(doc, partition, config.reprocessIntervalMs, force))) continue;
      work.push(async () => {
        converging.add(partition.partitionId);
        const outcome = await p.process(doc, partition).finally(() => converging.delete(partition.partitionId));
        // Limits and usage as this convergence left them (not awaited: a report never holds a convergence back).
        if (outcome === 'converged' || outcome === 'error') void usageReporter?.request();
        // Converged with promises still failing: reprocess again a little later (not in a tight loop).
        if (outcome === 'converged' && promises?.results(partition.partitionId).some((r) => !r.ok) === true)
          scheduleRetry(partition.partitionId);
        if (outcome !== 'idle')
          log(`partition ${partition.partitionId}: ${outcome}`, { instance: doc.instance_guid, title: doc.title });
      });
    }
    // Partitions converge independently (children are requested by their parents): a small pool,
    // so one slow partition never holds back the others.
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < work.length) {
        const job = work[next];
        next += 1;
        // One partition's failure must not end the pass while the others still run.
        if (job !== undefined) await job().catch((error: unknown) => log(`convergence failed: ${String(error)}`));
      }
    };
    await Promise.all(Array.from({ length: Math.min(PROCESS_CONCURRENCY, work.length) }, worker));
  }

  const retryTimers = new Map<string, NodeJS.Timeout>();
  function scheduleRetry(partitionId: string): void {
    if (retryTimers.has(partitionId) || stopped) return;
    const timer = setTimeout(() => {
      retryTimers.delete(partitionId);
      forced.add(partitionId);
      void requestSync();
    }, FAILING_RETRY_MS);
    timer.unref();
    retryTimers.set(partitionId, timer);
  }

  async function syncOnce(): Promise<void> {
    if (client === undefined || processor === undefined) return;
    await syncSoftware(client);
    await network?.pass();
    await syncPartitions(client, processor);
    // In the same serialised pass as the partitions: a list read before a set is retained and sent after its
    // own report would make the master forget it.
    if (clock.nowMs() >= retainedSweepAtMs) {
      retainedSweepAtMs = clock.nowMs() + config.retainedSweepIntervalMs;
      await sweepRetained(client).catch((error: unknown) => log(`retained sets: sweep failed: ${String(error)}`));
    }
  }

  /** Removes expired retained sets and tells the master which ones this node still holds. */
  async function sweepRetained(c: MasterClient): Promise<void> {
    const { kept } = await retained.sweep();
    await c.call('reportRetainedSets', retainedListReport(nodeId, kept, clock.nowMs()));
  }

  /** Serialises passes: a request during a pass makes exactly one more pass. */
  function requestSync(): Promise<void> {
    if (syncing !== undefined) {
      syncAgain = true;
      return syncing;
    }
    syncing = (async () => {
      try {
        do {
          syncAgain = false;
          await syncOnce().catch((error: unknown) => log(`sync failed: ${String(error)}`));
        } while (syncAgain && !stopped);
      } finally {
        syncing = undefined;
      }
    })();
    return syncing;
  }

  async function loop(c: MasterClient): Promise<void> {
    let cursor: number | undefined;
    let failures = 0;
    while (!stopped) {
      try {
        if (cursor === undefined) {
          cursor = (await c.call('waitForChange', {}, { signal: abort.signal })).cursor;
          await requestSync();
          continue;
        }
        const answer = await c.call('waitForChange', { since: cursor, timeout_ms: WAIT_MS }, { signal: abort.signal });
        cursor = answer.cursor;
        failures = 0;
        await requestSync();
      } catch (error) {
        if (stopped) break;
        failures += 1;
        log(`master unreachable or failing (${String(error)}); retrying`);
        // Its certificate revoked or unknown to the master, or none yet (the first ask failed): a new one, asked
        // for with the node's token.
        if (
          error instanceof HoxError &&
          error.code === 'HOX_UNAUTHENTICATED' &&
          /client certificate|requires node certificates/.test(error.message)
        )
          await nodeCertificate?.refresh({ force: true }).catch((e: unknown) => log(`node certificate: ${String(e)}`));
        await sleep(Math.min(10_000, 250 * 2 ** Math.min(failures, 6)), undefined, { signal: abort.signal }).catch(
          () => undefined,
        );
      }
    }
  }

  return {
    get nodeId() {
      return nodeId;
    },
    get partitions() {
      return partitions;
    },
    async start() {
      const credentials = await refreshRoots(await register());
      nodeId = credentials.nodeId;
      const c = new MasterClient({
        url: config.masterUrl,
        token: credentials.token,
        ...(credentials.masterCa === undefined ? {} : { ca: credentials.masterCa }),
      });
      client = c;
      // Mutual TLS with an HTTPS master: the node's own certificate, renewed hourly when aging (never fatal).
      if (config.masterUrl.startsWith('https:')) {
        const certificate = new NodeCertificate({ dataDir: config.dataDir, nodeId, client: c, log });
        nodeCertificate = certificate;
        const refresh = () =>
          certificate.refresh().catch((error: unknown) => log(`node certificate not renewed: ${String(error)}`));
        await refresh();
        certificateTimer = setInterval(() => void refresh(), 3_600_000);
        certificateTimer.unref();
      }
      const layouts = partitionLayouts({
        nodeId,
        dataDir: config.dataDir,
        count: config.partitions,
        ipPrefix: config.ipPrefix,
        portBase: config.portBase,
        portsPerPartition: config.portsPerPartition,
      });
      partitions = await formatPartitions(layouts, {
        partitionUsers: config.partitionUsers,
        // Partition processes see these at their path even when they lie under /tmp (their private /tmp hides it).
        isolation: {
          dataDir: config.dataDir,
          defaultLimits: config.limits,
          visiblePaths: [config.dataDir, PACKAGE_ROOT, config.builtinReleasesDir ?? BUILTIN_RELEASES_DIR],
        },
      });
      // Before any service starts: a partition's address receives nothing but its own processes' traffic.
      network = new NetworkIsolation({
        nodeTag: partitions[0]?.nodeTag ?? '',
        partitions: partitions.map((p) => ({
          ...p,
          cgroup: p.cgroups?.v2 === undefined ? undefined : partitionCgroup2Path(p.nodeTag, p.partitionId),
        })),
        enforce: config.networkIsolation,
        onProblemsChange: (partitionId, problems) => {
          log(`partition ${partitionId}: ${problems.length === 0 ? 'no squatter left' : problems.join('; ')}`);
          forced.add(partitionId);
          void requestSync();
        },
        log,
      });
      await network.start();
      await c.call('formatNode', {
        computer_guid: nodeId,
        compute_partition_list: partitions.map((p) => ({
          partition_id: p.partitionId,
          ip_list: [{ 'ip-address': p.ip, 'network-interface': 'lo' }],
        })),
      });
      supervisor = new Supervisor({
        stateDir: join(config.dataDir, 'run'),
        logDir,
        onEvent: (e) =>
          log(`service ${e.partitionId}/${e.name}: ${e.kind}`, { pid: e.pid, code: e.code, delayMs: e.delayMs }),
      });
      await supervisor.start();
      promises = new PromiseRunner({
        resultsFile: (partitionId) => join(config.dataDir, 'state', `${partitionId}.promises.json`),
        onChange: (partitionId, results, failing) => {
          // An emptied set (instance stopped or destroyed) says nothing about health, and while a partition
          // converges its processor waits for the promises and reports the settled result itself.
          if (results.length === 0 || converging.has(partitionId)) return;
          log(
            `partition ${partitionId}: promises ${failing.length === 0 ? 'all pass' : `failing: ${failing.map((f) => f.message).join('; ')}`}`,
          );
          if (failing.length > 0) forced.add(partitionId);
          void reportPromises(c, partitionId, promiseFailureMessages(failing));
        },
        // Each promise's own result, for `hox show`: the reporter sends only what changed.
        onUpdate: (partitionId) => void promiseReporter?.request(partitionId),
      });
      promiseReporter = new PromiseReporter({
        nodeId,
        client: c,
        instanceOn: async (partitionId) => {
          if (!partitions.some((p) => p.partitionId === partitionId)) return undefined;
          return instanceOn(partitionId);
        },
        runner: promises,
        log,
        clock,
      });
      usage = new PartitionUsageMonitor({
        partitions: () => partitions,
        logDir,
        defaults: config.limits,
        onQuotaChange: (partitionId, problem) => {
          log(`partition ${partitionId}: ${problem ?? 'back under its disk quota'}`);
          forced.add(partitionId);
          void requestSync();
        },
        onMeasured: () => void usageReporter?.request(),
        log,
        logCheckIntervalMs: config.logCheckIntervalMs,
        diskCheckIntervalMs: config.diskCheckIntervalMs,
        clock,
      });
      usageReporter = new PartitionUsageReporter({
        nodeId,
        client: c,
        partitions: () => partitions,
        instanceOn,
        monitor: usage,
        noCgroupsReason: process.getuid?.() === 0 ? 'partition users turned off' : 'node agent not root',
        log,
        clock,
      });
      usage.start();
      processor = new PartitionProcessor({
        nodeId,
        client: c,
        installer,
        supervisor,
        promises,
        states,
        secrets,
        publisher,
        nodePath: process.execPath,
        artifacts: new ArtifactCache(join(config.dataDir, 'artifacts')),
        usage,
        logDir,
        log,
        clock,
        networkProblems,
        retained,
      });
      retainedTimer = setInterval(() => void requestSync(), config.retainedSweepIntervalMs);
      retainedTimer.unref();
      // The node's own metrics (CPU, memory, load, its filesystems), for Prometheus through the master.
      const metricPaths = [config.dataDir, ...new Set(partitions.map((p) => dirname(p.path)))];
      // And what each partition's services expose in .hox/metrics.prom (a database member's lag, WAL, commits).
      const partitionMetrics = new PartitionMetricsReader({
        partitions: () => partitions,
        instanceOn,
        log,
        clock,
      });
      const sendMetrics = () => void reportNodeMetrics(c, nodeId, metricPaths, log, () => partitionMetrics.read());
      sendMetrics();
      metricsTimer = setInterval(sendMetrics, config.diskCheckIntervalMs);
      metricsTimer.unref();
      // Log requests (`hox logs` through the master) have their own long-poll: a long convergence never holds them.
      logRelay = new LogRelay({
        nodeId,
        client: c,
        logDir,
        instanceOn: async (partitionId) => {
          // Only this node's own partitions: an id from the request never builds a path by itself.
          if (!partitions.some((p) => p.partitionId === partitionId)) return undefined;
          return instanceOn(partitionId);
        },
        log,
      });
      logRelay.start();
      // After a restart (or a reboot) every partition is converged once, whatever its timestamp.
      for (const p of partitions) forced.add(p.partitionId);
      loopDone = loop(c);
      return { nodeId };
    },
    async stop(options = {}) {
      if (stopped) return;
      stopped = true;
      abort.abort();
      await logRelay?.stop();
      await loopDone;
      await syncing;
      promises?.stop();
      await promiseReporter?.stop();
      usage?.stop();
      await usageReporter?.stop();
      await publisher.stop();
      for (const timer of retryTimers.values()) clearTimeout(timer);
      clearInterval(retainedTimer);
      clearInterval(metricsTimer);
      clearInterval(certificateTimer);
      if (options.stopServices === true && supervisor !== undefined)
        for (const p of partitions) await supervisor.stopPartition(p.partitionId);
      await network?.stop({ removeRules: options.stopServices === true });
      await supervisor?.stop();
    },
    syncNow: () => requestSync(),
  };

  async function reportPromises(c: MasterClient, partitionId: string, failures: string[]): Promise<void> {
    const state = await states.read(partitionId);
    if (state === undefined) return;
    // Passing promises do not clear a runtime publication still refused.
    const runtimeProblem = publisher.problem(partitionId);
    const problems = [
      ...failures,
      ...(runtimeProblem === null ? [] : [runtimeProblem]),
      ...networkProblems(partitionId),
    ];
    try {
      if (problems.length > 0)
        await c.call('reportInstanceError', { instance_guid: state.instanceGuid, message: problems.join('; ') });
      else await c.call('reportInstanceState', { instance_guid: state.instanceGuid, reported_state: 'started' });
    } catch (error) {
      log(`partition ${partitionId}: cannot report promises: ${String(error)}`);
    }
    if (failures.length > 0) void requestSync();
  }
}
