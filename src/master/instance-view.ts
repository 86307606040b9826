/** Turns instance rows into the SlapOS JSON API's instance document. */
import type { InstanceRow, IpAddress, PartitionRow, StoreTx } from '../store/store.js';
import type { RequestedState } from '../shared/states.js';

export interface InstanceDocument {
  instance_guid: string;
  title: string;
  root_instance_title: string;
  computer_guid: string;
  compute_partition_id: string;
  software_release_uri: string;
  software_type: string;
  shared: boolean;
  state: RequestedState;
  processing_timestamp: number;
  access_status_message: string;
  parameters: Record<string, unknown>;
  sla_parameters: Record<string, unknown>;
  connection_parameters: Record<string, unknown>;
  ip_list: string[][];
  full_ip_list: string[][];
}

export function toIpList(ips: IpAddress[]): string[][] {
  return ips.map((ip) => [ip['network-interface'] ?? '', ip['ip-address']]);
}

/** SlapOS-style access status text. */
export function accessStatus(instance: InstanceRow): string {
  if (instance.errorMessage !== null) return `#error ${instance.errorMessage}`;
  if (instance.reportedState !== null) return `#access Instance correctly ${instance.reportedState}`;
  return `#error no data found for ${instance.id}`;
}

/**
 * The SlapOS document of an instance. `partition`, when the caller already holds the instance's own
 * partition row (node sync), spares reading it again.
 */
export async function instanceDocument(
  tx: StoreTx,
  instance: InstanceRow,
  partition?: PartitionRow,
): Promise<InstanceDocument> {
  const tree = await tx.getTree(instance.treeId);
  let nodeId = instance.nodeId;
  let partitionId = instance.partitionId;
  let ips: IpAddress[] = [];
  if (instance.shared && instance.hostInstanceId !== null) {
    const host = await tx.getInstance(instance.hostInstanceId);
    nodeId = host?.nodeId ?? null;
    partitionId = host?.partitionId ?? null;
  }
  if (nodeId !== null && partitionId !== null) {
    const known = partition?.nodeId === nodeId && partition.partitionId === partitionId ? partition : undefined;
    ips = (known ?? (await tx.getPartition(nodeId, partitionId)))?.ipList ?? [];
  }
  return {
    instance_guid: instance.id,
    title: instance.title,
    root_instance_title: tree?.title ?? '',
    computer_guid: nodeId ?? '',
    compute_partition_id: partitionId ?? '',
    software_release_uri: instance.releaseUrl,
    software_type: instance.softwareType,
    shared: instance.shared,
    state: instance.requestedState,
    processing_timestamp: instance.processingTimestamp,
    access_status_message: accessStatus(instance),
    parameters: instance.parameters,
    sla_parameters: instance.sla,
    connection_parameters: instance.connectionParameters,
    ip_list: toIpList(ips),
    full_ip_list: [],
  };
}

/** What a free partition answers: nothing to process. */
export function freePartitionDocument(nodeId: string, partitionId: string, ips: IpAddress[]): InstanceDocument {
  return {
    instance_guid: '',
    title: '',
    root_instance_title: '',
    computer_guid: nodeId,
    compute_partition_id: partitionId,
    software_release_uri: '',
    software_type: '',
    shared: false,
    state: 'destroyed',
    processing_timestamp: 0,
    access_status_message: '',
    parameters: {},
    sla_parameters: {},
    connection_parameters: {},
    ip_list: toIpList(ips),
    full_ip_list: [],
  };
}
