/**
 * What the slap protocol's answers say of our instances, and what its requests mean in ours: the bridge between
 * the master's rows and slap-objects.ts. Reads only, in the caller's transaction.
 *
 * Values: SlapOS keeps parameters as strings (its instance XML); ours are JSON. A string stays a string either way;
 * going out, any other value is written as JSON (`7`, `true`, `{"a":1}`); coming in, a marshalled value keeps its
 * type (an `<int>` is a number, a `<dictionary>` an object), so a SlapOS client that sends strings stores strings.
 */
import { HoxError } from '../../shared/errors.js';
import type { InstanceRow, PartitionRow } from '../../store/store.js';
import type { OpContext } from '../context.js';
import { accessStatus } from '../instance-view.js';
import type { InstanceParameters } from './instance-xml.js';
import { isPyDict, isPyFloat, isPyList, isPyTuple, isSlapObject, type PyValue } from './xml-marshaller.js';
import { buildAllocatedPartition, buildFreePartition, type AllocatedInstance } from './slap-objects.js';
import type { SlapObject } from './xml-marshaller.js';

/** Our JSON values as SlapOS's strings: a string as it is, anything else as JSON. */
export function toSlapParameters(values: Record<string, unknown>): InstanceParameters {
  // fromEntries defines own properties: a parameter named `__proto__` stays a parameter.
  return Object.fromEntries(
    Object.entries(values).map(([key, value]) => [
      key,
      value === null ? null : typeof value === 'string' ? value : JSON.stringify(value),
    ]),
  );
}

/** A marshalled value as JSON: bigints as numbers (refused beyond 2^53), tuples and lists as arrays. */
export function toJson(value: PyValue, field: string): unknown {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return value;
  if (typeof value === 'bigint') {
    if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER))
      throw new HoxError('HOX_BAD_REQUEST', `${field}: integer ${value} is too large`, { field });
    return Number(value);
  }
  if (isPyFloat(value)) return value.value;
  if (isPyTuple(value)) return value.items.map((v) => toJson(v, field));
  if (isPyList(value)) return value.map((v) => toJson(v, field));
  if (isPyDict(value)) return Object.fromEntries([...value].map(([k, v]) => [k, toJson(v, `${field}.${k}`)]));
  if (isSlapObject(value))
    throw new HoxError('HOX_BAD_REQUEST', `${field}: an object is no parameter value`, { field });
  throw new HoxError('HOX_BAD_REQUEST', `${field}: unexpected value`, { field });
}

/** A marshalled dictionary as a JSON object (`<none/>` and an absent field are empty). */
export function toJsonObject(value: PyValue | undefined, field: string): Record<string, unknown> {
  if (value === undefined || value === null) return {};
  if (!isPyDict(value)) throw new HoxError('HOX_BAD_REQUEST', `${field}: must be a marshalled dictionary`, { field });
  return toJson(value, field) as Record<string, unknown>;
}

/** The microseconds timestamp slapgrid compares with what it processed last. */
const timestampOf = (i: InstanceRow): bigint => BigInt(Math.trunc(i.processingTimestamp));

/** An instance placed on `partition`, with the shared instances it hosts, as slap-objects.ts takes it. */
export async function allocatedInstance(
  ctx: OpContext,
  instance: InstanceRow,
  partition: PartitionRow,
): Promise<AllocatedInstance> {
  const tree = await ctx.tx.getTree(instance.treeId);
  const hosted = (await ctx.tx.listHostedInstances(instance.id)).filter((h) => h.requestedState !== 'destroyed');
  return {
    computerId: partition.nodeId,
    partitionId: partition.partitionId,
    softwareReleaseUrl: instance.releaseUrl,
    softwareType: instance.softwareType,
    instanceGuid: instance.id,
    instanceTitle: instance.title,
    rootInstanceTitle: tree?.title ?? '',
    requestedState: instance.requestedState,
    parameters: toSlapParameters(instance.parameters),
    connection: toSlapParameters(instance.connectionParameters),
    filter: toSlapParameters(instance.sla),
    ipList: partition.ipList.map((ip) => [ip['network-interface'] ?? '', ip['ip-address']] as const),
    sharedInstances: hosted.map((h) => ({
      title: h.title,
      softwareType: h.softwareType,
      reference: h.id,
      timestamp: timestampOf(h),
      parameters: toSlapParameters(h.parameters),
    })),
    timestamp: timestampOf(instance),
  };
}

/** A partition as getFullComputerInformation / registerComputerPartition send it. */
export async function partitionObject(
  ctx: OpContext,
  partition: PartitionRow,
  options: { synced?: boolean } = {},
): Promise<SlapObject> {
  const instance = partition.instanceId === null ? undefined : await ctx.tx.getInstance(partition.instanceId);
  if (instance === undefined)
    return buildFreePartition({ computerId: partition.nodeId, partitionId: partition.partitionId });
  return buildAllocatedPartition(await allocatedInstance(ctx, instance, partition), {
    accessStatus: accessStatus(instance),
    ...(options.synced === true ? { synced: true } : {}),
  });
}
