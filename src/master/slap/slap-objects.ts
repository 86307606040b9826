/**
 * The slap objects a master answers with (`Computer`, `ComputerPartition`, `SoftwareRelease`,
 * `SoftwareInstance` of `slapos.slap.slap`), built from plain inputs with the attributes SlapOS's master
 * (ERP5 SlapTool) gives them — the shapes its tests assert (testSlapOSSlapTool.py) and that slap.py, slapgrid
 * and the slapconfiguration / request recipes read. Pure: no clock, no store; `dumps` them to answer.
 *
 * Invariants the builders keep, because clients rely on them:
 * - a partition's `timestamp` (in `_parameter_dict`) is the largest of the instance's and its shared instances'
 *   timestamps, as the master computes it: slapgrid reprocesses a partition only when it grows;
 * - master-set keys (`ip_list`, `slap_*`, `timestamp`, …) override instance parameters of the same name, as the
 *   master's `_parameter_dict.update(...)` does;
 * - a free partition is `destroyed` with no software release, which slapgrid skips.
 */
import { createHash } from 'node:crypto';
import { pyRepr, type InstanceParameters } from './instance-xml.js';
import {
  compareCodePoints,
  pyDict,
  pyTuple,
  slapObject,
  type PyTuple,
  type PyValue,
  type SlapObject,
} from './xml-marshaller.js';

/** A partition's requested state (`_requested_state`). */
export type SlapPartitionState = 'started' | 'stopped' | 'destroyed';
/** A software release's requested state on a compute node. */
export type SlapSoftwareState = 'available' | 'destroyed';
/** An `ip_list` entry: (interface name, address); SlapOS's master sends `''` as the interface name. */
export type IpListEntry = readonly [interfaceName: string, address: string];

/** A shared instance hosted on a partition: one entry of its `slave_instance_list`. */
export interface SharedInstanceEntry {
  /** `slave_title` */
  readonly title: string;
  /** `slap_software_type` */
  readonly softwareType: string;
  /** `slave_reference`: the shared instance's guid, which the host names when it publishes for it. */
  readonly reference: string;
  /** Grows whenever the shared instance changes. */
  readonly timestamp: bigint;
  /** The shared instance's parameters, merged into the entry (they win over the four keys above). */
  readonly parameters: InstanceParameters;
  /**
   * What the host published for it. When given, merged in with `connection-parameter-hash`, which lets the host
   * skip re-posting an unchanged dict (as the 2022 master does); when left out, neither appears (current master).
   */
  readonly connection?: InstanceParameters;
}

/** An instance allocated on a partition, as the master knows it. */
export interface AllocatedInstance {
  readonly computerId: string;
  readonly partitionId: string;
  readonly softwareReleaseUrl: string;
  readonly softwareType: string;
  /** `_instance_guid`: the instance's reference. */
  readonly instanceGuid: string;
  readonly instanceTitle: string;
  readonly rootInstanceTitle: string;
  /** @default '' */
  readonly rootInstanceShortTitle?: string;
  readonly requestedState: SlapPartitionState;
  /** Requested parameters (`xml2dict` of the stored instance XML). */
  readonly parameters: InstanceParameters;
  /** Published connection parameters. */
  readonly connection: InstanceParameters;
  /** SLA (`filter_kw`); slapgrid reads `retention_delay` and the `fw_*` keys. @default {} */
  readonly filter?: InstanceParameters;
  /** Required by the slapconfiguration recipe, even when empty. */
  readonly ipList: readonly IpListEntry[];
  /** 5-tuples (interface, address, gateway, netmask, network). @default [] */
  readonly fullIpList?: readonly (readonly string[])[];
  /** @default [] */
  readonly sharedInstances?: readonly SharedInstanceEntry[];
  /** Grows whenever anything the node acts on changes (e.g. microseconds of the last change). */
  readonly timestamp: bigint;
}

export interface PartitionOptions {
  /** `_access_status` (getFullComputerInformation sends it, registerComputerPartition does not). */
  readonly accessStatus?: string;
  /** `_synced = True` (registerComputerPartition sends it). */
  readonly synced?: boolean;
}

const tuples = (rows: readonly (readonly string[])[]): PyTuple[] => rows.map((row) => pyTuple(...row));

/** `slapos.util.calculate_dict_hash`: sha256 of Python's `str(sorted(d.items()))`. */
export function calculateDictHash(dict: InstanceParameters): string {
  const items = Object.keys(dict)
    .sort(compareCodePoints)
    .map((key) => pyTuple(key, dict[key] ?? null));
  return createHash('sha256').update(pyRepr(items), 'utf8').digest('hex');
}

function sharedInstanceDict(entry: SharedInstanceEntry): Map<string, PyValue> {
  const dict = pyDict({
    slave_title: entry.title,
    slap_software_type: entry.softwareType,
    slave_reference: entry.reference,
    timestamp: entry.timestamp,
  });
  if (entry.connection !== undefined) {
    for (const [key, value] of Object.entries(entry.connection)) dict.set(key, value);
    dict.set('connection-parameter-hash', calculateDictHash(entry.connection));
  }
  for (const [key, value] of Object.entries(entry.parameters)) dict.set(key, value);
  return dict;
}

/** The master's `_asParameterDict` keys (less the XMLs and the guid), shared by partitions and instances. */
function masterKeys(instance: AllocatedInstance): Record<string, PyValue> {
  const shared = instance.sharedInstances ?? [];
  const timestamp = shared.reduce((max, entry) => (entry.timestamp > max ? entry.timestamp : max), instance.timestamp);
  return {
    full_ip_list: tuples(instance.fullIpList ?? []),
    instance_title: instance.instanceTitle,
    ip_list: tuples(instance.ipList),
    root_instance_short_title: instance.rootInstanceShortTitle ?? '',
    root_instance_title: instance.rootInstanceTitle,
    slap_computer_id: instance.computerId,
    slap_computer_partition_id: instance.partitionId,
    slap_software_release_url: instance.softwareReleaseUrl,
    slap_software_type: instance.softwareType,
    slave_instance_list: shared.map(sharedInstanceDict),
    timestamp,
  };
}

/**
 * A software release: in a computer's `_software_release_list` (with `requestedState`), or as a partition's
 * `_software_release_document` (without). slapgrid installs it into `md5(url)`.
 */
export function buildSoftwareRelease(input: {
  readonly url: string;
  readonly computerId: string;
  readonly requestedState?: SlapSoftwareState;
}): SlapObject {
  return slapObject(
    'SoftwareRelease',
    pyDict({
      _computer_guid: input.computerId,
      _requested_state: input.requestedState,
      _software_instance_list: [],
      _software_release: input.url,
    }),
  );
}

/** A partition no instance uses: `destroyed`, no release (slapgrid skips it). */
export function buildFreePartition(input: { readonly computerId: string; readonly partitionId: string }): SlapObject {
  return slapObject(
    'ComputerPartition',
    pyDict({
      _computer_id: input.computerId,
      _need_modification: 0n,
      _partition_id: input.partitionId,
      _request_dict: null,
      _requested_state: 'destroyed',
      _software_release_document: null,
    }),
  );
}

/** A partition an instance is allocated on, as getFullComputerInformation and registerComputerPartition send it. */
export function buildAllocatedPartition(instance: AllocatedInstance, options: PartitionOptions = {}): SlapObject {
  const parameters = pyDict({ ...instance.parameters, ...masterKeys(instance) });
  return slapObject(
    'ComputerPartition',
    pyDict({
      _access_status: options.accessStatus,
      _computer_id: instance.computerId,
      _connection_dict: pyDict(instance.connection),
      _filter_dict: pyDict(instance.filter ?? {}),
      _instance_guid: instance.instanceGuid,
      _need_modification: 1n,
      _parameter_dict: parameters,
      _partition_id: instance.partitionId,
      _request_dict: null,
      _requested_state: instance.requestedState,
      _software_release_document: buildSoftwareRelease({
        url: instance.softwareReleaseUrl,
        computerId: instance.computerId,
      }),
      _synced: options.synced === true ? true : undefined,
    }),
  );
}

/** A compute node with what it must install and run: the answer of getFullComputerInformation. */
export function buildComputer(input: {
  readonly computerId: string;
  readonly softwareReleases: readonly { readonly url: string; readonly requestedState: SlapSoftwareState }[];
  /** From {@link buildAllocatedPartition} / {@link buildFreePartition}. */
  readonly partitions: readonly SlapObject[];
}): SlapObject {
  return slapObject(
    'Computer',
    pyDict({
      _computer_id: input.computerId,
      _computer_partition_list: [...input.partitions],
      _software_release_list: input.softwareReleases.map((release) =>
        buildSoftwareRelease({ ...release, computerId: input.computerId }),
      ),
    }),
  );
}

/**
 * A requested instance, allocated: the 200 answer of requestComputerPartition. slap.py builds a
 * ComputerPartition from `slap_computer_id` / `slap_computer_partition_id` and copies every attribute;
 * `_parameter_dict` holds the requested parameters only (for a shared instance, its own ones).
 */
export function buildSoftwareInstance(instance: AllocatedInstance): SlapObject {
  return slapObject(
    'SoftwareInstance',
    pyDict({
      ...masterKeys(instance),
      _connection_dict: pyDict(instance.connection),
      _filter_dict: pyDict(instance.filter ?? {}),
      _instance_guid: instance.instanceGuid,
      _parameter_dict: pyDict(instance.parameters),
      _requested_state: instance.requestedState,
    }),
  );
}
