/** Pure: what partition i of a node is called, where it lives, its address, ports and unix user. */
import { createHash } from 'node:crypto';
import { join } from 'node:path';

export interface PartitionLayout {
  partitionId: string;
  path: string;
  ip: string;
  portBase: number;
  portCount: number;
  /** Unix user name (also used as its group name). */
  user: string;
  /**
   * 6 hex digits of the SHA-256 of the node id and the data dir: what tells this agent's users and
   * cgroups from another agent's on the same machine (`hx<nodeTag>-p0`, `hox/<nodeTag>/p0`).
   */
  nodeTag: string;
}

function shortHash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 6);
}

/** 127.x.y derived from the node id, so nodes on one machine get distinct loopback ranges. */
export function defaultIpPrefix(nodeId: string): string {
  const h = createHash('sha256').update(nodeId).digest();
  return `127.${20 + (h[0]! % 200)}.${h[1]! % 250}`;
}

export function partitionLayouts(options: {
  nodeId: string;
  dataDir: string;
  count: number;
  ipPrefix?: string | undefined;
  portBase: number;
  portsPerPartition: number;
}): PartitionLayout[] {
  const prefix = options.ipPrefix ?? defaultIpPrefix(options.nodeId);
  const tag = shortHash(`${options.nodeId}\0${options.dataDir}`);
  return Array.from({ length: options.count }, (_, i) => {
    const partitionId = `p${i}`;
    return {
      partitionId,
      path: join(options.dataDir, 'partitions', partitionId),
      ip: `${prefix}.${i + 1}`,
      portBase: options.portBase + i * options.portsPerPartition,
      portCount: options.portsPerPartition,
      user: `hx${tag}-${partitionId}`,
      nodeTag: tag,
    };
  });
}
