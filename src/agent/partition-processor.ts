/**
 * Converges one partition towards its instance document: validate the
 * parameters against the release's schema, run the (pure) profile, request
 * children as the instance, render files, supervise services, run promises,
 * publish connection parameters, report. Or, for a destroyed instance: stop,
 * run the destroy hook, wipe, report destroyed.
 */
import { createHash } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { MasterClient } from '../client/master-client.js';
import { isNotReady } from '../client/master-client.js';
import type { InstanceDocumentBody } from '../protocol/schemas.js';
import type {
  PartitionPlan,
  ProfileInput,
  RequestedInstanceResult,
  SharedInstanceEntry,
} from '../release-kit/types.js';
import type { LocalCa } from '../shared/pki/local-ca.js';
import { HoxError } from '../shared/errors.js';
import type { FormattedPartition } from './format/partition-formatter.js';
import type { Installer } from './install/installer.js';
import type { PartitionState, PartitionStateStore } from './partition-state.js';
import type { PromiseResult } from './promise/check-promise.js';
import type { PromiseRunner } from './promise/promise-runner.js';
import type { Supervisor } from './supervise/supervisor.js';
import { wipePartition } from './partition-cleanup.js';
import type { PartitionUsageMonitor } from './isolate/usage-monitor.js';
import { runCommand } from './run-command.js';
import { SchemaChecker } from './schema-checker.js';
import type { ArtifactCache } from './artifact-cache.js';
import { writePartitionFiles } from './partition-files.js';
import { promiseFailureMessages } from './instance-health.js';
import { deriveSecret, type PartitionSecretStore } from './partition-secret.js';
import { ensureRuntimeDir } from './publish/runtime-file.js';
import { retainedSetReport } from './retained-report.js';
import type { RetainedSet, RetainedStore } from './retained-store.js';
import type { RuntimePublisher } from './publish/runtime-publisher.js';
import { masterAccessFiles } from './master-access.js';
import { siteCertificateFiles } from './site-certificates.js';

export interface ProcessorDeps {
  nodeId: string;
  client: MasterClient;
  installer: Installer;
  supervisor: Supervisor;
  promises: PromiseRunner;
  states: PartitionStateStore;
  /** Each tenancy's secret, behind `input.secret(name)`. */
  secrets: PartitionSecretStore;
  /** Publishes connection parameters, with the services' runtime publication merged in. */
  publisher: RuntimePublisher;
  /** Node.js the services run with. */
  nodePath: string;
  /** Downloads the artifacts plans ask for, and copies them into partitions. */
  artifacts: ArtifactCache;
  /** Each partition's limits (the plan's over the node's), disk usage and log rotation. */
  usage: PartitionUsageMonitor;
  /** What the network isolation found wrong with a partition (squatters), reported with its promises. */
  networkProblems?: (partitionId: string) => readonly string[];
  /** Where the supervisor keeps a partition's service logs (removed with the instance). */
  logDir: (partitionId: string) => string;
  log: (message: string, fields?: Record<string, unknown>) => void;
  clock: { nowMs(): number };
  /** Keeps what a software type declares `retain` after its instance is destroyed. */
  retained?: RetainedStore;
}

/** Answers to a retained set's report that a retry would get again. */
const REFUSED_FOR_GOOD: ReadonlySet<string> = new Set([
  'HOX_BAD_REQUEST',
  'HOX_BODY_TOO_LARGE',
  'HOX_CONFLICT',
  'HOX_INSTANCE_NOT_FOUND',
]);

/** How long a convergence waits for fresh services to pass their promises before reporting. */
const PROMISE_SETTLE_MS = 3000;

/** How many times one convergence re-runs the profile when its requests' answers changed. */
const MAX_PROFILE_PASSES = 3;

export type ProcessOutcome = 'converged' | 'destroyed' | 'waiting-software' | 'error' | 'idle';

export class PartitionProcessor {
  private readonly schemas = new SchemaChecker();

  constructor(private readonly deps: ProcessorDeps) {}

  /** Whether this document needs work now. */
  async needsProcessing(
    doc: InstanceDocumentBody,
    partition: FormattedPartition,
    periodMs: number,
    force: boolean,
  ): Promise<boolean> {
    const state = await this.deps.states.read(partition.partitionId);
    if (doc.instance_guid === '') return state !== undefined; // freed: clean up what we had
    if (state === undefined || state.instanceGuid !== doc.instance_guid) return true;
    if (doc.state === 'destroyed') return state.destroyed !== true;
    if (state.processedTimestamp !== doc.processing_timestamp) return true;
    return force || this.deps.clock.nowMs() - state.processedAtMs >= periodMs;
  }

  async process(doc: InstanceDocumentBody, partition: FormattedPartition): Promise<ProcessOutcome> {
    const { partitionId } = partition;
    const previous = await this.deps.states.read(partitionId);
    if (doc.instance_guid === '' || (previous !== undefined && previous.instanceGuid !== doc.instance_guid)) {
      // The partition was freed (or reassigned): whatever ran here goes.
      if (previous !== undefined) await this.wipe(partition, previous, undefined);
      if (doc.instance_guid === '') return 'idle';
    }
    if (doc.state === 'destroyed') {
      if (previous?.destroyed !== true || previous.instanceGuid !== doc.instance_guid)
        await this.wipe(partition, previous, doc);
      return 'destroyed';
    }
    if (!this.deps.installer.isInstalled(doc.software_release_uri)) return 'waiting-software';
    const state: PartitionState =
      previous !== undefined && previous.instanceGuid === doc.instance_guid
        ? previous
        : {
            instanceGuid: doc.instance_guid,
            processedTimestamp: 0,
            processedAtMs: 0,
            instanceToken: null,
            requested: {},
            publishedShared: [],
            lastError: null,
          };
    try {
      await this.converge(doc, partition, state);
      state.processedTimestamp = doc.processing_timestamp;
      state.processedAtMs = this.deps.clock.nowMs();
      await this.deps.states.write(partitionId, state);
      return 'converged';
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      this.deps.log(`partition ${partitionId}: ${message}`, { instance: doc.instance_guid });
      // Remember we tried at this timestamp only for errors a retry cannot fix; others retry on the next tick.
      // Reported again for a new request (a new processing_timestamp) that fails the same way: its requester
      // waits for an error reported after its request, and would otherwise wait for its whole timeout.
      if (state.lastError !== message || state.lastErrorTimestamp !== doc.processing_timestamp) {
        state.lastError = message;
        state.lastErrorTimestamp = doc.processing_timestamp;
        await this.deps.client
          .call('reportInstanceError', { instance_guid: doc.instance_guid, message })
          .catch(() => undefined);
      }
      state.processedAtMs = this.deps.clock.nowMs();
      await this.deps.states.write(partitionId, state);
      return 'error';
    }
  }

  private async converge(
    doc: InstanceDocumentBody,
    partition: FormattedPartition,
    state: PartitionState,
  ): Promise<void> {
    const release = await this.deps.installer.load(doc.software_release_uri);
    const type = release.definition.softwareTypes[doc.software_type];
    if (type === undefined)
      throw new HoxError(
        'HOX_BAD_REQUEST',
        `software type '${doc.software_type}' is not in release '${doc.software_release_uri}' (it has: ${Object.keys(release.definition.softwareTypes).join(', ')})`,
      );
    // A user's root (or shared instance) of an internal type would run with parameters only the release's
    // own instances should write (a member's settings, a replica's artifact): never run it.
    if (release.manifest.internalSoftwareTypes?.includes(doc.software_type) === true) {
      const root = doc.shared || doc.title === doc.root_instance_title;
      if (root)
        throw new HoxError(
          'HOX_BAD_REQUEST',
          `software type '${doc.software_type}' of release '${doc.software_release_uri}' is internal: only the release's own instances request it`,
          { field: 'software_type' },
        );
    }
    this.schemas.check(type.parameters, doc.parameters, 'parameters');
    // Stored before any profile sees it: what a profile derives from it may end up in a database.
    const secret = await this.deps.secrets.load(partition.partitionId, doc.instance_guid);
    const authorities = await this.deps.secrets.authorities(
      partition.partitionId,
      doc.instance_guid,
      type.certificateAuthorities ?? {},
    );
    const asInstance = await this.instanceClient(doc.instance_guid, state);

    const hosted = (await asInstance.call('listHostedInstances', { instance_guid: doc.instance_guid })).result_list;
    const shared: SharedInstanceEntry[] = hosted.map((h) => ({
      slave_reference: h.instance_guid,
      slave_title: h.title,
      slap_software_type: h.software_type,
      parameters: h.parameters,
      state: h.state,
    }));

    let plan: PartitionPlan = {};
    for (let pass = 0; pass < MAX_PROFILE_PASSES; pass += 1) {
      plan = type.profile(
        this.profileInput(doc, partition, release.path, shared, state.requested, secret, authorities),
      );
      const answers = await this.request(asInstance, plan);
      if (JSON.stringify(answers) === JSON.stringify(state.requested)) break;
      state.requested = answers;
    }

    // Site certificates before the files that name them (edge.json…): in the partition before any service reads them.
    const held = await this.deps.secrets.siteCertificates(partition.partitionId, doc.instance_guid);
    if ((plan.certificates ?? []).length > 0 || Object.keys(held).length > 0) {
      const certificates = await siteCertificateFiles({
        specs: plan.certificates ?? [],
        held,
        nowMs: Date.now(),
        issue: async (ask) =>
          await asInstance.call('issueSiteCertificate', { instance_guid: doc.instance_guid, ...ask }),
      });
      if (certificates.changed)
        await this.deps.secrets.putSiteCertificates(partition.partitionId, doc.instance_guid, certificates.held);
      plan = { ...plan, files: [...certificates.files, ...(plan.files ?? [])] };
    }

    if (plan.masterAccess === true && state.instanceToken !== null) {
      const access = masterAccessFiles({
        masterUrl: this.deps.client.url,
        masterCa: this.deps.client.ca,
        instanceGuid: doc.instance_guid,
        token: state.instanceToken,
      });
      plan = { ...plan, files: [...access, ...(plan.files ?? [])] };
    }

    // Limits before anything of this convergence starts; a partition over its disk quota runs nothing.
    const quotaProblem = await this.deps.usage.enforce(partition, plan.limits);
    const running = doc.state === 'started' && quotaProblem === null;

    // Artifacts first: a file re-read by a running service (`reload`) may name one.
    // Fetched as the instance: the master gives it only its owner's (or the admin's) artifacts.
    await this.deps.artifacts.deliver(partition, plan.artifacts ?? [], this.deps.nodePath, asInstance);
    await writePartitionFiles(partition, plan.files ?? [], this.deps.nodePath);
    // Where services write their runtime publication (the partition was emptied since the format, maybe).
    await ensureRuntimeDir(partition);
    // Services restart when the files rendered for them change: their hash is part of each service's spec.
    // Files marked `reload` are re-read by the services themselves and stay out of the hash.
    const filesHash = createHash('sha256')
      .update(JSON.stringify((plan.files ?? []).filter((f) => f.reload !== true)))
      .digest('hex')
      .slice(0, 16);
    const services = (running ? (plan.services ?? []) : []).map((spec) => ({
      ...spec,
      env: { ...spec.env, HOX_FILES_HASH: filesHash },
    }));
    await this.deps.supervisor.ensure(
      partition.partitionId,
      services.map((spec) => ({
        partitionId: partition.partitionId,
        spec,
        partitionPath: partition.path,
        ...(partition.uid === undefined ? {} : { uid: partition.uid, gid: partition.gid }),
        isolation: partition.isolation,
        env: this.serviceEnv(doc, partition, spec.env),
      })),
    );
    // Commands run as the partition see the partition's environment, never the agent's (tokens, proxies…).
    const context = {
      cwd: partition.path,
      env: this.serviceEnv(doc, partition, undefined),
      ...(partition.uid === undefined ? {} : { uid: partition.uid, gid: partition.gid }),
      isolation: partition.isolation,
    };
    this.deps.promises.set(partition.partitionId, running ? (plan.promises ?? []) : [], context);

    await this.deps.publisher.publish(partition.partitionId, {
      partition,
      instanceGuid: doc.instance_guid,
      client: asInstance,
      base: plan.publish ?? {},
      validate: (value) => this.schemas.check(type.connection, value, 'connection parameters'),
      state: doc.state === 'stopped' ? 'stopped' : 'started',
    });
    for (const [guid, params] of Object.entries(plan.publishShared ?? {})) {
      if (!hosted.some((h) => h.instance_guid === guid)) continue;
      await asInstance.call('publishConnectionParameters', { instance_guid: guid, connection_parameter_dict: params });
    }
    state.publishedShared = Object.keys(plan.publishShared ?? {});
    // Give fresh services a moment to pass their promises, so "started" means healthy.
    const failing = running ? await this.settlePromises(partition.partitionId, plan) : [];
    // The runtime publication may have been fixed (or broken) while the promises settled.
    const runtimeProblem = this.deps.publisher.problem(partition.partitionId);
    const failures = [
      ...(quotaProblem === null ? [] : [quotaProblem]),
      ...promiseFailureMessages(failing),
      ...(runtimeProblem === null ? [] : [runtimeProblem]),
      ...(this.deps.networkProblems?.(partition.partitionId) ?? []),
    ];
    if (failures.length > 0) {
      const message = failures.join('; ');
      state.lastError = message;
      state.lastErrorTimestamp = doc.processing_timestamp;
      await asInstance.call('reportInstanceError', { instance_guid: doc.instance_guid, message });
      return;
    }
    state.lastError = null;
    await asInstance.call('reportInstanceState', { instance_guid: doc.instance_guid, reported_state: doc.state });
  }

  /** Checks the plan's promises until they pass or `PROMISE_SETTLE_MS` elapses; returns those still failing. */
  private async settlePromises(partitionId: string, plan: PartitionPlan): Promise<PromiseResult[]> {
    const planned = new Set((plan.promises ?? []).map((p) => p.name));
    if (planned.size === 0) return [];
    const deadline = this.deps.clock.nowMs() + PROMISE_SETTLE_MS;
    for (let attempt = 0; attempt < 100; attempt += 1) {
      const failing = (await this.deps.promises.checkNow(partitionId)).filter((r) => !r.ok && planned.has(r.name));
      if (failing.length === 0 || this.deps.clock.nowMs() >= deadline) return failing;
      await sleep(150);
    }
    return [];
  }

  /**
   * A client acting as the instance. A stored token that stopped working (revoked, or lost with a
   * restored store) is replaced once.
   */
  private async instanceClient(instanceGuid: string, state: PartitionState): Promise<MasterClient> {
    const issue = async (): Promise<string> =>
      (await this.deps.client.call('issueInstanceToken', { instance_guid: instanceGuid })).token;
    state.instanceToken ??= await issue();
    try {
      await this.deps.client.withToken(state.instanceToken).call('whoami', {});
    } catch (error) {
      if (!(error instanceof HoxError) || error.code !== 'HOX_UNAUTHENTICATED') throw error;
      state.instanceToken = await issue();
    }
    return this.deps.client.withToken(state.instanceToken);
  }

  private profileInput(
    doc: InstanceDocumentBody,
    partition: FormattedPartition,
    softwarePath: string,
    shared: SharedInstanceEntry[],
    requested: Record<string, RequestedInstanceResult>,
    secret: Buffer,
    authorities: Readonly<Record<string, LocalCa>>,
  ): ProfileInput {
    return {
      parameters: doc.parameters,
      instance_title: doc.title,
      root_instance_title: doc.root_instance_title,
      slap_computer_id: doc.computer_guid,
      slap_computer_partition_id: doc.compute_partition_id,
      slap_software_type: doc.software_type,
      slap_software_release_url: doc.software_release_uri,
      slave_instance_list: shared,
      ip_list: doc.ip_list,
      timestamp: doc.processing_timestamp,
      state: doc.state === 'stopped' ? 'stopped' : 'started',
      partition: {
        path: partition.path,
        ip: partition.ip,
        portBase: partition.portBase,
        portCount: partition.portCount,
        user: partition.uid === undefined ? (process.env.USER ?? 'current') : partition.user,
      },
      softwarePath,
      tools: { node: this.deps.nodePath },
      requested,
      secret: (name) => deriveSecret(secret, name),
      certificateAuthority: (name) => {
        const ca = authorities[name];
        if (ca === undefined)
          throw new HoxError(
            'HOX_INTERNAL',
            `certificate authority '${name}' is not declared by software type '${doc.software_type}' (certificateAuthorities)`,
          );
        return { ...ca };
      },
    };
  }

  /** Makes the plan's requests as the instance; a child that cannot be satisfied yet is not an error. */
  private async request(
    asInstance: MasterClient,
    plan: PartitionPlan,
  ): Promise<Record<string, RequestedInstanceResult>> {
    const answers: Record<string, RequestedInstanceResult> = {};
    for (const r of plan.requests ?? []) {
      try {
        const answer = await asInstance.call('requestInstance', {
          title: r.title,
          software_release_uri: r.softwareReleaseUrl,
          software_type: r.softwareType,
          parameters: r.parameters ?? {},
          sla_parameters: r.sla ?? {},
          shared: r.shared ?? false,
          state: r.state ?? 'started',
        });
        // Accepted but placed nowhere yet: the master places it once room appears; the release reads why it waits
        // (its words keep "no free partition" when it lacks room: the releases then relax their anti-affinity).
        answers[r.title] = isNotReady(answer)
          ? {
              ready: false,
              instanceGuid: null,
              connectionParameters: {},
              error: answer.message.replace(/^Software Instance Not Ready: /, ''),
            }
          : {
              ready: Object.keys(answer.connection_parameters).length > 0,
              instanceGuid: answer.instance_guid,
              connectionParameters: answer.connection_parameters,
            };
      } catch (error) {
        // A child requested destroyed that the master has already forgotten is gone: no answer for it.
        if (error instanceof HoxError && error.code === 'HOX_INSTANCE_NOT_FOUND' && r.state === 'destroyed') continue;
        // Not satisfiable yet (no free partition, no host, master busy): the parent converges again later.
        if (!(error instanceof HoxError) || !error.retryable) throw error;
        answers[r.title] = { ready: false, instanceGuid: null, connectionParameters: {}, error: error.message };
      }
    }
    return answers;
  }

  private serviceEnv(
    doc: InstanceDocumentBody,
    partition: FormattedPartition,
    extra: Record<string, string> | undefined,
  ): Record<string, string> {
    return {
      PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
      HOME: partition.path,
      LANG: 'C.UTF-8',
      HOX_PARTITION_ID: partition.partitionId,
      HOX_PARTITION_PATH: partition.path,
      HOX_PARTITION_IP: partition.ip,
      HOX_PORT_BASE: String(partition.portBase),
      HOX_INSTANCE_GUID: doc.instance_guid,
      HOX_INSTANCE_TITLE: doc.title,
      ...extra,
    };
  }

  /**
   * Stops everything, runs the release's destroy hook, moves what its software type retains out of the
   * partition, empties the directory, tells the master what was retained, then reports destroyed. Each step
   * may run again after a crash or a failed report (the state says destroyed only at the end).
   */
  private async wipe(
    partition: FormattedPartition,
    state: PartitionState | undefined,
    doc: InstanceDocumentBody | undefined,
  ): Promise<void> {
    await this.deps.publisher.forget(partition.partitionId);
    await this.deps.supervisor.stopPartition(partition.partitionId);
    this.deps.promises.clear(partition.partitionId);
    const release =
      doc !== undefined && this.deps.installer.isInstalled(doc.software_release_uri)
        ? await this.deps.installer.load(doc.software_release_uri).catch((error: unknown) => {
            this.deps.log(`partition ${partition.partitionId}: release not loadable at destroy: ${String(error)}`);
            return undefined;
          })
        : undefined;
    if (doc !== undefined && release !== undefined) {
      try {
        const secret = await this.deps.secrets.load(partition.partitionId, doc.instance_guid);
        const authorities = await this.deps.secrets.authorities(
          partition.partitionId,
          doc.instance_guid,
          release.definition.softwareTypes[doc.software_type]?.certificateAuthorities ?? {},
        );
        const input = this.profileInput(doc, partition, release.path, [], state?.requested ?? {}, secret, authorities);
        const hooks = release.definition.destroy?.(input) ?? [];
        for (const hook of hooks)
          await runCommand(hook.command, {
            cwd: partition.path,
            env: this.serviceEnv(doc, partition, undefined),
            ...(partition.uid === undefined ? {} : { uid: partition.uid, gid: partition.gid }),
            isolation: partition.isolation,
            timeoutMs: 600_000,
          });
      } catch (error) {
        this.deps.log(`partition ${partition.partitionId}: destroy hook failed: ${String(error)}`);
      }
    }
    const specs = doc === undefined ? undefined : release?.definition.softwareTypes[doc.software_type]?.retain;
    const kept: { set: RetainedSet | null } = { set: null };
    // Nothing of the previous tenant may meet the next one: its processes, files, logs — but what its
    // software type retains leaves the partition first (a failed move throws: nothing is emptied then).
    await wipePartition(partition, this.deps.nodePath, this.deps.usage.defaults, async () => {
      if (doc === undefined || specs === undefined || this.deps.retained === undefined) return;
      kept.set = await this.deps.retained.retain({
        partitionPath: partition.path,
        partitionId: partition.partitionId,
        instanceGuid: doc.instance_guid,
        instanceTitle: doc.title,
        rootInstanceTitle: doc.root_instance_title,
        releaseUrl: doc.software_release_uri,
        softwareType: doc.software_type,
        specs,
      });
    });
    this.deps.usage.forget(partition.partitionId);
    await rm(this.deps.logDir(partition.partitionId), { recursive: true, force: true });
    // The next tenant gets its own secret.
    await this.deps.secrets.remove(partition.partitionId);
    if (doc === undefined) {
      await this.deps.states.remove(partition.partitionId);
      return;
    }
    // While the master still knows the instance (and so its owner): a destroyed report makes it forget it.
    if (kept.set !== null) {
      try {
        await this.deps.client.call(
          'reportRetainedSet',
          retainedSetReport(this.deps.nodeId, kept.set, this.deps.clock.nowMs()),
        );
      } catch (error) {
        // Refused for good (too large, forgotten instance): the set stays on the node, unlisted, until its
        // sweep; the destroy goes on. Anything else (master unreachable) is retried with the whole destroy.
        if (!(error instanceof HoxError) || !REFUSED_FOR_GOOD.has(error.code)) throw error;
        this.deps.log(`partition ${partition.partitionId}: retained set not recorded by the master: ${error.message}`);
      }
    }
    await this.deps.client.call('reportInstanceState', {
      instance_guid: doc.instance_guid,
      reported_state: 'destroyed',
    });
    // Remembered until the master frees the partition, so the destroy hook runs once.
    await this.deps.states.write(partition.partitionId, {
      instanceGuid: doc.instance_guid,
      processedTimestamp: doc.processing_timestamp,
      processedAtMs: this.deps.clock.nowMs(),
      instanceToken: null,
      requested: {},
      publishedShared: [],
      lastError: null,
      destroyed: true,
    });
  }
}
