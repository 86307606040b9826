/**
 * JSON Schemas of every body the master accepts and answers, written with
 * TypeBox so the same definition gives the runtime schema and the static type.
 * The `slapos.*.v0.*` shapes follow SlapOS's JSON API v0.0.3; the `hox.*.v1.*`
 * ones are ours. Objects are closed (`additionalProperties: false`): an
 * unknown field is an error, never silently dropped.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';

const closed = { additionalProperties: false } as const;

export const Title = Type.String({
  minLength: 1,
  maxLength: 200,
  description: 'Instance title, unique within its instance tree',
});
export const ReleaseUrl = Type.String({ minLength: 1, maxLength: 2048, description: 'URL naming a software release' });
export const NodeId = Type.String({ minLength: 1, maxLength: 63, description: 'Compute node id (computer_guid)' });
export const InstanceGuid = Type.String({
  minLength: 1,
  maxLength: 64,
  description: 'Instance reference, e.g. SOFTINST-k3m9x2qa7d',
});
export const RequestedState = Type.Union([Type.Literal('started'), Type.Literal('stopped'), Type.Literal('destroyed')]);
export const FreeObject = Type.Record(Type.String(), Type.Unknown(), { description: 'Any JSON object' });
export const IpList = Type.Array(Type.Array(Type.String()), { description: '[[interface, address], …]' });

export const Success = Type.Object(
  { type: Type.Literal('success'), title: Type.String({ description: 'What was done' }) },
  { ...closed, $id: 'Success' },
);

export const ErrorBody = Type.Object(
  {
    status: Type.Integer({ description: 'Same as the HTTP status' }),
    type: Type.String({ description: 'Error code from docs/errors.md, e.g. HOX_INSTANCE_NOT_FOUND' }),
    title: Type.String({ description: 'Readable message naming the thing and the value' }),
    field: Type.Optional(Type.String({ description: 'The request field at fault' })),
    retryable: Type.Boolean(),
  },
  { ...closed, $id: 'Error' },
);

export const NotReady = Type.Object(
  {
    status: Type.Literal(102),
    name: Type.Literal('SoftwareInstanceNotReady'),
    message: Type.String(),
  },
  {
    ...closed,
    $id: 'NotReady',
    description: 'Accepted, but not answerable yet: ask again later (HTTP 200, as SlapOS).',
  },
);

export const InstanceDocument = Type.Object(
  {
    instance_guid: Type.String(),
    title: Type.String(),
    root_instance_title: Type.String(),
    computer_guid: Type.String(),
    compute_partition_id: Type.String(),
    software_release_uri: Type.String(),
    software_type: Type.String(),
    shared: Type.Boolean(),
    state: RequestedState,
    processing_timestamp: Type.Integer({
      description: 'Microseconds; strictly increases whenever the node must reprocess',
    }),
    access_status_message: Type.String(),
    parameters: FreeObject,
    sla_parameters: FreeObject,
    connection_parameters: FreeObject,
    ip_list: IpList,
    full_ip_list: IpList,
  },
  { ...closed, $id: 'Instance' },
);

const IpAddress = Type.Object(
  {
    'ip-address': Type.String({ minLength: 1, maxLength: 64 }),
    'network-interface': Type.Optional(Type.String({ maxLength: 64 })),
    'gateway-ip-address': Type.Optional(Type.String({ maxLength: 64 })),
    netmask: Type.Optional(Type.String({ maxLength: 64 })),
    'network-address': Type.Optional(Type.String({ maxLength: 64 })),
  },
  closed,
);

const Sla = Type.Record(Type.String(), Type.Union([Type.String({ maxLength: 512 }), Type.Number()]), {
  description:
    'computer_guid, network_guid, instance_guid (shared), mode=unique_by_network, anti_affinity, retention_delay',
});

const list = <T extends TSchema>(item: T) => Type.Object({ result_list: Type.Array(item) }, closed);

const Bytes = Type.Integer({ minimum: 0 });
/** A retained set's time left, in the node's clock (not the master's): up to a year. */
const RetainedExpiresInMs = Type.Integer({ minimum: 0, maximum: 366 * 86_400_000 });
/** One path a node keeps of a destroyed instance: what it holds, its size and its small index. */
const RetainedPath = Type.Object(
  {
    path: Type.String({ minLength: 1, maxLength: 1024 }),
    kind: Type.String({ minLength: 1, maxLength: 63, pattern: '^[A-Za-z0-9_.-]+$' }),
    bytes: Bytes,
    catalog: Type.Array(Type.Record(Type.String(), Type.Unknown(), { maxProperties: 32 }), { maxItems: 100 }),
  },
  closed,
);

const LimitName = Type.Union([
  Type.Literal('memory_bytes'),
  Type.Literal('cpus'),
  Type.Literal('pids'),
  Type.Literal('disk_bytes'),
  Type.Literal('log_bytes'),
]);

/** A partition's limits as the node enforces them: the plan's over the node's defaults. */
const PartitionLimits = Type.Object(
  {
    memory_bytes: Bytes,
    cpus: Type.Number({ exclusiveMinimum: 0, maximum: 100000, description: 'CPU time in cores' }),
    pids: Type.Integer({ minimum: 0, maximum: 4194304, description: 'Processes and threads' }),
    disk_bytes: Bytes,
    log_bytes: Type.Integer({ minimum: 0, description: "Cap of each service's log" }),
  },
  closed,
);

/** What a partition uses; null where the node cannot count it (no cgroups, disk not measured yet). */
const PartitionUse = Type.Object(
  {
    memory_bytes: Type.Union([Bytes, Type.Null()], { description: 'Page cache and /dev/shm included' }),
    memory_working_set_bytes: Type.Optional(
      Type.Union([Bytes, Type.Null()], {
        description: 'memory_bytes less the inactive page cache (reclaimed at the limit, not killed for)',
      }),
    ),
    pids: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()], { description: 'Processes and threads' }),
    oom_kills: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()], {
      description: 'Processes killed for want of memory since the partition was last wiped',
    }),
    disk_bytes: Type.Union([Bytes, Type.Null()], { description: 'As last measured (every 30 s)' }),
  },
  closed,
);

const NotEnforced = Type.Array(LimitName, {
  maxItems: 5,
  uniqueItems: true,
  description: 'Limits set but not enforced on this node (memory, cpus and pids need the agent to run as root)',
});
const NotEnforcedReason = Type.Union([Type.String({ maxLength: 500 }), Type.Null()]);
const AGE_MAX_MS = 7 * 86_400_000;

/** A partition's limits and usage as the master answers them: times in its own clock, ages at answer time. */
const PartitionUsageStatus = Type.Object(
  {
    limits: PartitionLimits,
    not_enforced: NotEnforced,
    not_enforced_reason: NotEnforcedReason,
    usage: PartitionUse,
    measured_at: Type.String({ description: 'When memory and processes were read (ISO 8601, master clock)' }),
    age_ms: Type.Integer({ minimum: 0, description: 'How old that reading is, at the time of this answer' }),
    disk_measured_at: Type.Union([Type.String(), Type.Null()], { description: 'When the disk was measured' }),
    disk_age_ms: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()], {
      description: 'How old that measurement is, at the time of this answer',
    }),
  },
  closed,
);

/** Bounds of a promise report: a node says little, and only what a person reads in `hox show`. */
export const PROMISE_REPORT_LIMITS = Object.freeze({ promisesPerInstance: 64, nameChars: 200, messageChars: 300 });

/**
 * A promise's latest result, SlapOS's vocabulary kept (a promise passes or fails; one that has not run yet
 * has no result): `never_run` until its first check ends.
 */
const PromiseResultName = Type.Union([Type.Literal('ok'), Type.Literal('failed'), Type.Literal('never_run')], {
  description: 'ok or failed as of its latest check; never_run: it has not been checked yet',
});
const PromiseName = Type.String({ minLength: 1, maxLength: PROMISE_REPORT_LIMITS.nameChars });
const PromiseMessage = Type.Union([Type.String({ maxLength: PROMISE_REPORT_LIMITS.messageChars }), Type.Null()], {
  description: 'What the check found (target and verdict, credentials masked); null when never run',
});

/** One promise of an instance as its node reports it. */
const PromiseReportItem = Type.Object(
  {
    name: PromiseName,
    result: PromiseResultName,
    message: PromiseMessage,
    age_ms: Type.Union([Type.Integer({ minimum: 0, maximum: AGE_MAX_MS }), Type.Null()], {
      description: "How long ago its latest check ended (the node's clock is not the master's); null when never run",
    }),
  },
  closed,
);

/** One promise of an instance as the master answers it: times in its own clock, ages at answer time. */
const PromiseStatus = Type.Object(
  {
    name: Type.String(),
    result: PromiseResultName,
    message: Type.Union([Type.String(), Type.Null()]),
    checked_at: Type.Union([Type.String(), Type.Null()], {
      description: 'When its latest reported check ended (ISO 8601, master clock); null when never run',
    }),
    age_ms: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()], {
      description: 'How old that check is, at the time of this answer',
    }),
  },
  closed,
);

/** The promises of an instance as its node last reported them. */
const PromiseReportStatus = Type.Object(
  {
    reported_at: Type.String({ description: 'When the node last reported them (ISO 8601, master clock)' }),
    reported_age_ms: Type.Integer({ minimum: 0, description: 'How old that report is, at the time of this answer' }),
    promise_list: Type.Array(PromiseStatus, {
      description:
        "Every promise the instance's plan has, in its order; empty when none runs (none planned, or stopped)",
    }),
  },
  closed,
);

/** A service's name as the agent names its log (`<service>.log`). */
const ServiceName = Type.String({ minLength: 1, maxLength: 63, pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$' });
const PartitionId = Type.String({ minLength: 1, maxLength: 63 });
const LOG_LINES_MAX = 10_000;
const LogOffset = Type.Object(
  {
    instance_guid: InstanceGuid,
    service: ServiceName,
    offset: Type.Integer({ minimum: 0, description: 'Byte offset to read from (the `offset` of a previous answer)' }),
  },
  closed,
);
const LogLines = Type.Array(Type.String({ maxLength: 1048576 }), { maxItems: LOG_LINES_MAX });
/** One service log of one instance as its node read it. */
const NodeLog = Type.Object(
  {
    instance_guid: InstanceGuid,
    service: ServiceName,
    lines: LogLines,
    offset: Type.Integer({ minimum: 0, description: 'Where the read stopped: give it back to follow' }),
    truncated: Type.Boolean({ description: 'Older (tail) or newer (follow) lines were left out by the byte cap' }),
    modified_at_ms: Type.Integer({ minimum: 0, description: "The file's last change, in the node's clock" }),
  },
  closed,
);

/** Request and response bodies, by operation. */
/** Bounds on the metrics a partition's services expose through its node (`.hox/metrics.prom`). */
export const PARTITION_METRICS_LIMITS = Object.freeze({
  partitions: 1000,
  families: 200,
  samplesPerPartition: 2000,
  labels: 16,
  nameChars: 200,
  labelValueChars: 1024,
  helpChars: 500,
});
const L = PARTITION_METRICS_LIMITS;
const MetricName = Type.String({ minLength: 1, maxLength: L.nameChars, pattern: '^[a-zA-Z_:][a-zA-Z0-9_:]*$' });
const MetricSample = Type.Object(
  {
    suffix: Type.Union([Type.Literal(''), Type.Literal('_bucket'), Type.Literal('_sum'), Type.Literal('_count')], {
      description: "Appended to the family's name: '_bucket', '_sum' and '_count' for histograms and summaries",
    }),
    labels: Type.Record(
      // The key's pattern is all JSON Schema checks of a property name: the length is in it.
      Type.String({ pattern: `^[a-zA-Z_][a-zA-Z0-9_]{0,${L.nameChars - 1}}$` }),
      Type.String({ maxLength: L.labelValueChars }),
      // Without it, names the pattern does not match would pass unchecked.
      { maxProperties: L.labels, additionalProperties: false },
    ),
    value: Type.Union([Type.Number(), Type.Literal('NaN'), Type.Literal('+Inf'), Type.Literal('-Inf')]),
  },
  closed,
);
const PartitionMetrics = Type.Object(
  {
    compute_partition_id: PartitionId,
    instance_guid: InstanceGuid,
    families: Type.Array(
      Type.Object(
        {
          name: MetricName,
          type: Type.Union([
            Type.Literal('counter'),
            Type.Literal('gauge'),
            Type.Literal('histogram'),
            Type.Literal('summary'),
            Type.Literal('untyped'),
          ]),
          help: Type.String({ maxLength: L.helpChars }),
          samples: Type.Array(MetricSample, { maxItems: L.samplesPerPartition }),
        },
        closed,
      ),
      { maxItems: L.families },
    ),
  },
  {
    ...closed,
    description: "What a partition's services expose in `.hox/metrics.prom`, as its node last read it",
  },
);

export const ALERT_REPORT_LIMITS = Object.freeze({ alerts: 500, keyChars: 300, summaryChars: 500, evidence: 20 });
const EpochMs = Type.Union([Type.Integer({ minimum: 0 }), Type.Null()]);
const AlertSeverity = Type.Union([Type.Literal('warning'), Type.Literal('critical')]);
const AlertResource = Type.Object(
  {
    node: NodeId,
    partition: Type.Optional(PartitionId),
    path: Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })),
  },
  closed,
);
const AlertEvidence = Type.Record(
  Type.String({ maxLength: 64 }),
  Type.Union([Type.String({ maxLength: 300 }), Type.Number(), Type.Boolean(), Type.Null()]),
  { maxProperties: ALERT_REPORT_LIMITS.evidence, description: 'What the judgement rests on' },
);
const AlertItem = Type.Object(
  {
    key: Type.String({ minLength: 1, maxLength: ALERT_REPORT_LIMITS.keyChars }),
    rule: Type.String({ minLength: 1, maxLength: 63, pattern: '^[a-z0-9][a-z0-9-]*$' }),
    severity: AlertSeverity,
    resource: AlertResource,
    summary: Type.String({ minLength: 1, maxLength: ALERT_REPORT_LIMITS.summaryChars }),
    eta_ms: EpochMs,
    eta_earliest_ms: EpochMs,
    eta_latest_ms: EpochMs,
    evidence: AlertEvidence,
  },
  closed,
);
const AlertView = Type.Object(
  {
    id: Type.String(),
    rule: Type.String(),
    severity: AlertSeverity,
    state: Type.Union([Type.Literal('open'), Type.Literal('resolved')]),
    node: Type.String(),
    partition: Type.Union([Type.String(), Type.Null()]),
    path: Type.Union([Type.String(), Type.Null()]),
    tree: Type.Union([Type.String(), Type.Null()], { description: "The instance tree's title (its owner's)" }),
    instance: Type.Union([Type.String(), Type.Null()]),
    summary: Type.String(),
    eta: Type.Union([Type.String(), Type.Null()]),
    eta_earliest: Type.Union([Type.String(), Type.Null()]),
    eta_latest: Type.Union([Type.String(), Type.Null()]),
    evidence: FreeObject,
    opened_at: Type.String(),
    updated_at: Type.String(),
    resolved_at: Type.Union([Type.String(), Type.Null()]),
    action: Type.Union([FreeObject, Type.Null()]),
  },
  closed,
);

export const Bodies = {
  success: Success,
  instanceDocument: InstanceDocument,
  // ---- SlapOS JSON API v0 -------------------------------------------------
  softwareInstallationReportedState: Type.Object(
    {
      software_release_uri: ReleaseUrl,
      computer_guid: NodeId,
      reported_state: Type.Union([Type.Literal('available'), Type.Literal('destroyed'), Type.Literal('building')]),
    },
    closed,
  ),
  softwareInstallationError: Type.Object(
    { software_release_uri: ReleaseUrl, computer_guid: NodeId, message: Type.String({ maxLength: 65536 }) },
    closed,
  ),
  softwareInstallation: Type.Object(
    {
      software_release_uri: ReleaseUrl,
      computer_guid: NodeId,
      state: Type.Optional(
        Type.Union([Type.Literal('available'), Type.Literal('destroyed')], { default: 'available' }),
      ),
    },
    closed,
  ),
  computeNodeSoftwareInstallationList: Type.Object({ computer_guid: NodeId }, closed),
  computeNodeSoftwareInstallationListResult: list(
    Type.Object(
      {
        software_release_uri: Type.String(),
        state: Type.Union([Type.Literal('available'), Type.Literal('destroyed')]),
      },
      closed,
    ),
  ),
  instanceTreeList: Type.Object({}, closed),
  instanceTreeListResult: list(Type.Object({ title: Type.String() }, closed)),
  instanceTree: Type.Object({ title: Title }, closed),
  instanceGuid: Type.Object({ instance_guid: InstanceGuid }, closed),
  certificate: Type.Object({ key: Type.String(), certificate: Type.String() }, closed),
  userCertificate: Type.Object({}, closed),
  siteCertificate: Type.Object(
    {
      instance_guid: InstanceGuid,
      dns_names: Type.Array(Type.String({ minLength: 1, maxLength: 253 }), { maxItems: 32 }),
      ip_addresses: Type.Array(Type.String({ minLength: 2, maxLength: 45 }), { maxItems: 8 }),
      public_key_pem: Type.String({ minLength: 1, maxLength: 4096, description: 'The holder key (PEM SPKI)' }),
      lifetime_days: Type.Optional(Type.Integer({ minimum: 1, maximum: 90 })),
    },
    closed,
  ),
  alertReport: Type.Object(
    {
      instance_guid: InstanceGuid,
      alerts: Type.Array(AlertItem, {
        maxItems: ALERT_REPORT_LIMITS.alerts,
        description: "Every alert open now: keys left out are resolved (this monitor's only)",
      }),
    },
    closed,
  ),
  alertReportResult: Type.Object(
    {
      opened: Type.Integer({ minimum: 0 }),
      updated: Type.Integer({ minimum: 0 }),
      resolved: Type.Integer({ minimum: 0 }),
      unknown_resources: Type.Array(Type.String(), { description: 'Keys whose node is unknown: not stored' }),
    },
    closed,
  ),
  alertQuery: Type.Object(
    {
      all: Type.Optional(Type.Boolean({ description: 'Also alerts resolved in the last 7 days' })),
      limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
    },
    closed,
  ),
  alertList: list(AlertView),
  metricsQuery: Type.Object(
    {
      target: Type.String({
        minLength: 1,
        maxLength: 200,
        description: "A compute node id (the admin's only), or one of the caller's instance trees",
      }),
      minutes: Type.Integer({ minimum: 1, maximum: 10080, description: 'How far back (at most a week)' }),
    },
    closed,
  ),
  metricsResult: Type.Object(
    {
      target: Type.String(),
      kind: Type.Union([Type.Literal('node'), Type.Literal('tree')]),
      start: Type.String({ description: 'The first point (ISO 8601)' }),
      step_s: Type.Integer({ minimum: 1 }),
      series: Type.Array(
        Type.Object(
          {
            name: Type.String(),
            query: Type.String({ description: 'The PromQL run on the monitor' }),
            unit: Type.Union([
              Type.Literal('bytes'),
              Type.Literal('bytes/s'),
              Type.Literal('ratio'),
              Type.Literal('count'),
              Type.Literal('rate'),
              Type.Literal('seconds'),
            ]),
            labels: Type.Record(Type.String(), Type.String()),
            values: Type.Array(Type.Union([Type.Number(), Type.Null()]), {
              description: 'One per step from start, null where the monitor has none',
            }),
          },
          closed,
        ),
      ),
    },
    closed,
  ),
  siteCertificateResult: Type.Object(
    { certificate: Type.String(), ca_certificates: Type.String(), not_after: Type.String() },
    closed,
  ),
  softwareInstanceTitle: Type.Object({ instance_guid: InstanceGuid, title: Title }, closed),
  hateoasUrl: Type.Object({}, closed),
  hateoasUrlResult: Type.Object({ hateoas_url: Type.String() }, closed),
  connectionParameter: Type.Object({ instance_guid: InstanceGuid, connection_parameter_dict: FreeObject }, closed),
  computerGuid: Type.Object({ computer_guid: NodeId }, closed),
  computeNodeStatusResult: Type.Object(
    {
      text: Type.String({
        description: '`#access <node>` once it called in, `#error no data found for <node>` before',
      }),
      reference: Type.String({ description: 'The compute node (SlapOS)' }),
      portal_type: Type.Literal('Compute Node'),
      created_at: Type.String({
        description: 'When the status was last written (its last contact; now without one), RFC 1123 as SlapOS',
      }),
      since: Type.String({ description: 'When the status took its current kind (RFC 1123)' }),
      state: Type.Literal(''),
      user: Type.String({ description: "Who wrote the status: the node, or 'SlapOS Master' without data" }),
      no_data: Type.Optional(Type.Literal(1, { description: 'Present (1) when the node never called in' })),
      no_data_since_15_minutes: Type.Optional(Type.Union([Type.Literal(0), Type.Literal(1)])),
      no_data_since_5_minutes: Type.Optional(Type.Union([Type.Literal(0), Type.Literal(1)])),
      computer_guid: Type.String(),
      title: Type.String(),
      registered_at: Type.String({ description: 'When it registered (ISO 8601)' }),
      last_contact_at: Type.Union([Type.String(), Type.Null()]),
      partition_count: Type.Integer(),
      free_partition_count: Type.Integer(),
    },
    { additionalProperties: true },
  ),
  computeNodeInstanceListResult: list(
    Type.Object(
      {
        instance_guid: Type.String(),
        title: Type.String(),
        state: RequestedState,
        compute_partition_id: Type.String(),
        software_release_uri: Type.String(),
      },
      closed,
    ),
  ),
  computePartition: Type.Object(
    { computer_guid: NodeId, compute_partition_id: Type.String({ minLength: 1, maxLength: 63 }) },
    closed,
  ),
  instanceMessage: Type.Object({ instance_guid: InstanceGuid, message: Type.String({ maxLength: 65536 }) }, closed),
  softwareInstance: Type.Object(
    {
      title: Title,
      software_release_uri: ReleaseUrl,
      software_type: Type.String({ maxLength: 200 }),
      parameters: Type.Optional(FreeObject),
      sla_parameters: Type.Optional(Sla),
      state: Type.Optional(RequestedState),
      shared: Type.Optional(Type.Boolean({ default: false })),
    },
    closed,
  ),
  requestResult: Type.Union([InstanceDocument, NotReady]),
  instanceNodeInstanceListResult: list(
    Type.Object(
      {
        instance_guid: Type.String(),
        title: Type.String(),
        software_type: Type.String(),
        state: RequestedState,
        parameters: FreeObject,
        compute_partition_id: Type.String(),
        software_release_uri: Type.String(),
      },
      closed,
    ),
  ),
  computeNodeUsage: Type.Object({ computer_guid: NodeId, tioxml: Type.String({ maxLength: 1048576 }) }, closed),
  computeNodeMessage: Type.Object({ computer_guid: NodeId, message: Type.String({ maxLength: 65536 }) }, closed),
  computeNodeFormat: Type.Object(
    {
      computer_guid: NodeId,
      compute_partition_list: Type.Array(
        Type.Object(
          {
            partition_id: Type.String({ minLength: 1, maxLength: 63 }),
            ip_list: Type.Optional(Type.Array(IpAddress, { maxItems: 64 })),
          },
          closed,
        ),
        { maxItems: 10000 },
      ),
    },
    closed,
  ),
  softwareInstanceReportedState: Type.Object(
    {
      instance_guid: InstanceGuid,
      reported_state: Type.Union([Type.Literal('started'), Type.Literal('destroyed'), Type.Literal('stopped')]),
    },
    closed,
  ),

  // ---- HyperOpenX v1 -------------------------------------------------------
  registrationToken: Type.Object(
    { ttl_seconds: Type.Optional(Type.Integer({ minimum: 60, maximum: 30 * 86400, default: 86400 })) },
    closed,
  ),
  registrationTokenResult: Type.Object({ token: Type.String(), expires_at: Type.String() }, closed),
  computeNodeRegister: Type.Object(
    {
      computer_guid: NodeId,
      title: Type.Optional(Type.String({ maxLength: 200 })),
      network_guid: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    },
    closed,
  ),
  computeNodeRegisterResult: Type.Object({ computer_guid: Type.String(), token: Type.String() }, closed),
  computeNodeList: Type.Object({}, closed),
  computeNodeListResult: list(
    Type.Object(
      {
        computer_guid: Type.String(),
        title: Type.String(),
        network_guid: Type.Union([Type.String(), Type.Null()]),
        status_text: Type.String(),
        last_contact_at: Type.Union([Type.String(), Type.Null()]),
        partition_count: Type.Integer(),
        free_partition_count: Type.Integer(),
        software_installation_count: Type.Integer(),
      },
      closed,
    ),
  ),
  computePartitionListResult: list(InstanceDocument),
  softwareInstallationStatusResult: list(
    Type.Object(
      {
        software_release_uri: Type.String(),
        state: Type.Union([Type.Literal('available'), Type.Literal('destroyed')]),
        reported_state: Type.Union([Type.String(), Type.Null()]),
        error_message: Type.Union([Type.String(), Type.Null()]),
      },
      closed,
    ),
  ),
  nodeMetricsReport: Type.Object(
    {
      computer_guid: NodeId,
      metrics: Type.Object(
        {
          cpus: Type.Integer({ minimum: 1, maximum: 4096 }),
          cpu_seconds: Type.Object(
            {
              user: Type.Number({ minimum: 0 }),
              nice: Type.Number({ minimum: 0 }),
              system: Type.Number({ minimum: 0 }),
              idle: Type.Number({ minimum: 0 }),
              irq: Type.Number({ minimum: 0 }),
            },
            { ...closed, description: 'CPU time since boot by mode, all cores together' },
          ),
          load1: Type.Number({ minimum: 0 }),
          load5: Type.Number({ minimum: 0 }),
          load15: Type.Number({ minimum: 0 }),
          memory_total_bytes: Type.Integer({ minimum: 0 }),
          memory_available_bytes: Type.Integer({ minimum: 0 }),
          filesystems: Type.Array(
            Type.Object(
              {
                path: Type.String({ minLength: 1, maxLength: 1024, description: 'A path on it the node uses' }),
                size_bytes: Type.Integer({ minimum: 0 }),
                free_bytes: Type.Integer({ minimum: 0 }),
                available_bytes: Type.Integer({ minimum: 0, description: 'Free to unprivileged users' }),
                files: Type.Integer({ minimum: 0 }),
                files_free: Type.Integer({ minimum: 0 }),
              },
              closed,
            ),
            { maxItems: 64 },
          ),
          partitions: Type.Optional(Type.Array(PartitionMetrics, { maxItems: L.partitions })),
        },
        closed,
      ),
    },
    closed,
  ),
  partitionUsageReport: Type.Object(
    {
      computer_guid: NodeId,
      partition_usage_list: Type.Array(
        Type.Object(
          {
            compute_partition_id: Type.String({ minLength: 1, maxLength: 63 }),
            instance_guid: InstanceGuid,
            limits: PartitionLimits,
            not_enforced: NotEnforced,
            not_enforced_reason: NotEnforcedReason,
            usage: PartitionUse,
            age_ms: Type.Integer({
              minimum: 0,
              maximum: AGE_MAX_MS,
              description: "How long ago memory and processes were read (the node's clock is not the master's)",
            }),
            disk_age_ms: Type.Union([Type.Integer({ minimum: 0, maximum: AGE_MAX_MS }), Type.Null()]),
          },
          closed,
        ),
        { maxItems: 10000 },
      ),
    },
    closed,
  ),
  promiseReport: Type.Object(
    {
      computer_guid: NodeId,
      promise_report_list: Type.Array(
        Type.Object(
          {
            compute_partition_id: Type.String({ minLength: 1, maxLength: 63 }),
            instance_guid: InstanceGuid,
            promise_list: Type.Array(PromiseReportItem, { maxItems: PROMISE_REPORT_LIMITS.promisesPerInstance }),
          },
          closed,
        ),
        { maxItems: 10000 },
      ),
    },
    closed,
  ),
  instanceToken: Type.Object({ instance_guid: InstanceGuid }, closed),
  instanceTokenResult: Type.Object({ instance_guid: Type.String(), token: Type.String() }, closed),
  user: Type.Object({ name: Type.String({ minLength: 1, maxLength: 63 }) }, closed),
  userResult: Type.Object({ user_id: Type.String(), name: Type.String(), token: Type.String() }, closed),
  userList: Type.Object({}, closed),
  userListResult: list(Type.Object({ user_id: Type.String(), name: Type.String(), created_at: Type.String() }, closed)),
  whoami: Type.Object({}, closed),
  whoamiResult: Type.Object(
    {
      kind: Type.Union([
        Type.Literal('admin'),
        Type.Literal('user'),
        Type.Literal('node'),
        Type.Literal('instance'),
        Type.Literal('registration'),
      ]),
      subject: Type.Union([Type.String(), Type.Null()]),
    },
    closed,
  ),
  retainedSetReport: Type.Object(
    {
      computer_guid: NodeId,
      compute_partition_id: Type.String({ minLength: 1, maxLength: 63 }),
      instance_guid: InstanceGuid,
      expires_in_ms: RetainedExpiresInMs,
      path_list: Type.Array(RetainedPath, { minItems: 1, maxItems: 8 }),
    },
    closed,
  ),
  retainedSetList: Type.Object(
    {
      computer_guid: NodeId,
      retained_list: Type.Array(
        Type.Object({ instance_guid: InstanceGuid, expires_in_ms: RetainedExpiresInMs }, closed),
        { maxItems: 10000 },
      ),
    },
    closed,
  ),
  retainedSetQuery: Type.Object({ title: Type.Optional(Title) }, closed),
  retainedSetQueryResult: list(
    Type.Object(
      {
        instance_guid: Type.String(),
        title: Type.String({ description: "The destroyed instance tree's title" }),
        instance_title: Type.String(),
        owner: Type.String(),
        software_release_uri: Type.String(),
        software_type: Type.String(),
        computer_guid: Type.String(),
        destroyed_at: Type.String(),
        expires_at: Type.String(),
        path_list: Type.Array(RetainedPath),
      },
      closed,
    ),
  ),
  treeStatusList: Type.Object({ title: Type.Optional(Title) }, closed),
  treeStatusListResult: list(
    Type.Object(
      {
        title: Type.String(),
        owner: Type.String(),
        root_instance_guid: Type.String(),
        created_at: Type.String(),
        health: Type.Union(
          [
            Type.Literal('ok'),
            Type.Literal('pending'),
            Type.Literal('error'),
            Type.Literal('stale'),
            Type.Literal('destroying'),
          ],
          {
            description:
              'ok: every instance reached its requested state, none reports an error, and every node running one contacted the master within the last 75 s; stale: such a node is silent (what it reported may be out of date)',
          },
        ),
        health_message: Type.Union([Type.String(), Type.Null()], { description: 'What is wrong; null when ok' }),
        reported_at: Type.Union([Type.String(), Type.Null()], {
          description: "The oldest last contact among the nodes running the tree's instances; null: none yet",
        }),
        reported_age_ms: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()], {
          description: "reported_at's age in the master's clock, as of this answer",
        }),
        instance_list: Type.Array(
          Type.Object(
            {
              instance_guid: Type.String(),
              title: Type.String(),
              requester_guid: Type.Union([Type.String(), Type.Null()]),
              shared: Type.Boolean(),
              software_release_uri: Type.String(),
              software_type: Type.String(),
              state: Type.String(),
              reported_state: Type.Union([Type.String(), Type.Null()]),
              access_status_message: Type.String(),
              status_at: Type.Union([Type.String(), Type.Null()]),
              computer_guid: Type.Union([Type.String(), Type.Null()]),
              compute_partition_id: Type.Union([Type.String(), Type.Null()]),
              host_instance_guid: Type.Union([Type.String(), Type.Null()]),
              waiting_for: Type.Union([Type.String(), Type.Null()], {
                description:
                  'Placed nowhere yet: what it waits for (a partition, a host) and why none fits; the master places it once one does. Null once placed',
              }),
              processing_timestamp: Type.Integer(),
              connection_parameters: FreeObject,
              parameters: Type.Record(Type.String(), Type.Unknown(), {
                description:
                  'The parameters the instance was requested with (hox request --param), secrets included: the caller owns the tree',
              }),
              sla_parameters: Type.Record(Type.String(), Type.Unknown(), {
                description: 'The SLA it was requested with (placement: computer_guid, …); empty when none',
              }),
              promises: Type.Union([PromiseReportStatus, Type.Null()], {
                description:
                  "Each promise's latest result as the instance's node last reported it; null without a partition or a report yet",
              }),
              partition_usage: Type.Union([PartitionUsageStatus, Type.Null()], {
                description:
                  "The partition's limits and usage as its node last reported them; null without a partition or a report",
              }),
            },
            closed,
          ),
        ),
      },
      closed,
    ),
  ),
  change: Type.Object(
    {
      since: Type.Optional(
        Type.Integer({ minimum: 0, description: 'Cursor from a previous answer; omit to get the current one at once' }),
      ),
      timeout_ms: Type.Optional(Type.Integer({ minimum: 0, maximum: 60000, default: 25000 })),
      computer_guid: Type.Optional(NodeId),
      instance_tree_title: Type.Optional(Title),
    },
    closed,
  ),
  changeResult: Type.Object({ cursor: Type.Integer(), changed: Type.Boolean() }, closed),
  treeLog: Type.Object(
    {
      title: Title,
      service: Type.Optional(ServiceName),
      lines: Type.Optional(
        Type.Integer({ minimum: 1, maximum: LOG_LINES_MAX, default: 50, description: 'Last lines of each log' }),
      ),
      wait_ms: Type.Optional(
        Type.Integer({ minimum: 500, maximum: 30000, default: 10000, description: 'How long to wait for the nodes' }),
      ),
      offset_list: Type.Optional(
        Type.Array(LogOffset, {
          maxItems: 1000,
          description:
            'Follow: read each log from its offset (logs not listed from their start); without it, the last lines',
        }),
      ),
    },
    closed,
  ),
  treeLogResult: Type.Object(
    {
      log_list: Type.Array(
        Type.Object(
          {
            instance_title: Type.String(),
            computer_guid: Type.String(),
            ...NodeLog.properties,
          },
          closed,
        ),
      ),
      problem_list: Type.Array(
        Type.Object(
          { computer_guid: Type.String(), message: Type.String() },
          { ...closed, description: 'A node whose logs are missing from this answer, and why' },
        ),
      ),
    },
    closed,
  ),
  logRequestWait: Type.Object(
    {
      computer_guid: NodeId,
      timeout_ms: Type.Optional(Type.Integer({ minimum: 0, maximum: 60000, default: 25000 })),
      seen_list: Type.Optional(
        Type.Array(Type.String({ maxLength: 64 }), {
          maxItems: 100,
          description: 'Requests the node already took: not handed again',
        }),
      ),
    },
    closed,
  ),
  logRequestList: list(
    Type.Object(
      {
        request_id: Type.String(),
        instance_list: Type.Array(
          Type.Object({ instance_guid: InstanceGuid, compute_partition_id: PartitionId }, closed),
          { maxItems: 1000 },
        ),
        service: Type.Union([ServiceName, Type.Null()]),
        lines: Type.Integer({ minimum: 1, maximum: LOG_LINES_MAX }),
        max_bytes: Type.Integer({ minimum: 1, description: 'Cap of the whole answer' }),
        offset_list: Type.Union([Type.Array(LogOffset, { maxItems: 1000 }), Type.Null()]),
      },
      closed,
    ),
  ),
  logRequestAnswer: Type.Object(
    {
      computer_guid: NodeId,
      request_id: Type.String({ minLength: 1, maxLength: 64 }),
      log_list: Type.Array(NodeLog, { maxItems: 1000 }),
      error: Type.Union([Type.String({ maxLength: 2000 }), Type.Null()]),
    },
    closed,
  ),
  auditLog: Type.Object(
    {
      since: Type.Optional(
        Type.String({ minLength: 1, maxLength: 64, description: 'Only entries at or after this ISO 8601 time' }),
      ),
      user: Type.Optional(
        Type.String({
          minLength: 1,
          maxLength: 63,
          description:
            "Only the calls this user made (name, or 'admin' for the admin token); a user may name only itself",
        }),
      ),
      limit: Type.Optional(
        Type.Integer({ minimum: 1, maximum: 10000, default: 100, description: 'The newest this many entries' }),
      ),
    },
    closed,
  ),
  auditLogResult: list(
    Type.Object(
      {
        seq: Type.Integer({ description: 'Order of the entries (may have gaps)' }),
        at: Type.String({ description: 'When the call was answered (ISO 8601, UTC)' }),
        actor_kind: Type.Union(
          [
            Type.Literal('admin'),
            Type.Literal('user'),
            Type.Literal('node'),
            Type.Literal('instance'),
            Type.Literal('registration'),
            Type.Literal('unauthenticated'),
          ],
          { description: 'The kind of token the call was made with; unauthenticated: none was accepted' },
        ),
        actor: Type.Union([Type.String(), Type.Null()], {
          description: 'User name, compute node id or instance guid; null for admin, registration, unauthenticated',
        }),
        address: Type.String({ description: "The caller's IP address" }),
        action: Type.String({ description: 'The operation (route name, or uploadArtifact)' }),
        target: Type.Record(Type.String(), Type.Union([Type.String(), Type.Boolean(), Type.Array(Type.String())]), {
          description:
            'What it acted on: ids and names from the request (computer_guid, instance_guid, title, software_release_uri without credentials, parameter_keys…), never a value, message or token',
        }),
        status: Type.Integer({ description: 'HTTP status answered' }),
        result: Type.String({ description: 'ok, or the error code answered' }),
      },
      closed,
    ),
  ),
  pkiStatus: Type.Object({}, closed),
  pkiRotation: Type.Object(
    {
      what: Type.Union([Type.Literal('issuing-ca'), Type.Literal('root')], {
        description:
          'issuing-ca: a new issuing CA under the current root; root: a new root (cross-signed by the current one) and a new issuing CA under it. What the old ones issued stays valid until it expires.',
      }),
    },
    closed,
  ),
  pkiStatusResult: Type.Object(
    {
      ca_pin: Type.String({ description: "The current root's pin (sha256:<hex>): what nodes and clients trust" }),
      roots: Type.Array(
        Type.Object(
          {
            subject: Type.String(),
            serial: Type.String(),
            pin: Type.String(),
            not_after: Type.String({ description: 'ISO 8601' }),
            current: Type.Boolean(),
          },
          closed,
        ),
      ),
      issuing_cas: Type.Array(
        Type.Object(
          {
            subject: Type.String(),
            serial: Type.String(),
            not_after: Type.String({ description: 'ISO 8601' }),
            current: Type.Boolean(),
          },
          closed,
        ),
      ),
      cross_certificates: Type.Integer({ description: 'New roots signed by older ones, still in the trust bundle' }),
      revoked: Type.Integer({ description: 'Certificates revoked and not yet expired' }),
      master_certificate: Type.Union(
        [
          Type.Object(
            {
              source: Type.Union([Type.Literal('platform'), Type.Literal('files')], {
                description: "platform: issued by this CA and renewed by the master; files: the operator's",
              }),
              not_after: Type.String({ description: 'ISO 8601' }),
              dns_names: Type.Array(Type.String()),
              ip_addresses: Type.Array(Type.String()),
            },
            closed,
          ),
          Type.Null(),
        ],
        { description: 'What the master that answered presents (null: it speaks plain HTTP, in-process tests only)' },
      ),
    },
    closed,
  ),
} as const;

export type BodyName = keyof typeof Bodies;
export type Body<N extends BodyName> = Static<(typeof Bodies)[N]>;
export type InstanceDocumentBody = Static<typeof InstanceDocument>;
export type ErrorBodyType = Static<typeof ErrorBody>;
