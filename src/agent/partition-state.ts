/**
 * What the agent remembers per partition, in `<data-dir>/state/<partition>.json`
 * (mode 0600, root-only when the agent is root): the instance it last
 * processed, at which timestamp, its instance token, and what its requests
 * answered. Written atomically so a crash never leaves half a file.
 */
import { chmod, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { RequestedInstanceResult } from '../release-kit/types.js';

export interface PartitionState {
  instanceGuid: string;
  /** processing_timestamp last converged successfully; 0 when never. */
  processedTimestamp: number;
  /** When it was last converged (for the periodic reprocess). */
  processedAtMs: number;
  /** The instance's bearer token (acts as the instance: children, publication). */
  instanceToken: string | null;
  requested: Record<string, RequestedInstanceResult>;
  /** Shared instances it published for, to know what changed. */
  publishedShared: string[];
  /** Last error reported, to avoid re-reporting the same one for the same request. */
  lastError: string | null;
  /** The processing_timestamp `lastError` was reported for: a new request failing the same way is reported again. */
  lastErrorTimestamp?: number;
  /** Wiped and reported destroyed; waiting for the master to free the partition. */
  destroyed?: boolean;
}

export class PartitionStateStore {
  constructor(private readonly dir: string) {}

  private file(partitionId: string): string {
    return join(this.dir, `${partitionId}.json`);
  }

  async read(partitionId: string): Promise<PartitionState | undefined> {
    try {
      return JSON.parse(await readFile(this.file(partitionId), 'utf8')) as PartitionState;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      // A damaged file is treated as unknown: the partition is simply reprocessed.
      return undefined;
    }
  }

  async write(partitionId: string, state: PartitionState): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const tmp = `${this.file(partitionId)}.tmp`;
    await writeFile(tmp, JSON.stringify(state), { mode: 0o600 });
    await chmod(tmp, 0o600);
    await rename(tmp, this.file(partitionId));
  }

  async remove(partitionId: string): Promise<void> {
    await rm(this.file(partitionId), { force: true });
  }
}
