/**
 * Disk usage of a partition: its directory and its private /tmp, measured by
 * `du` (blocks really used, hard links once, never following links, one file
 * system), as root. Nothing on these machines can refuse a write past a
 * quota (no file system quotas), so the agent measures and acts: over its
 * quota, a partition's services are stopped and the instance's error says
 * by how much (see `PartitionProcessor`).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { formatBytes } from '../../shared/bytes.js';

const run = promisify(execFile);

/** Bytes of disk used under `paths` together (missing paths count 0). */
export async function diskUsageBytes(paths: readonly string[]): Promise<number> {
  let total = 0;
  for (const path of paths) {
    try {
      const { stdout } = await run('/usr/bin/du', ['-s', '-x', '-B1', '--', path], {
        env: { PATH: '/usr/bin:/bin', LANG: 'C' },
        timeout: 120_000,
      });
      total += Number(stdout.split('\t')[0]);
    } catch (error) {
      // du exits 1 when a file vanished during the walk (a running service's temporary file); its sum stands.
      const stdout = (error as { stdout?: unknown }).stdout;
      if (typeof stdout === 'string' && /^\d+\t/.test(stdout)) total += Number(stdout.split('\t')[0]);
      else if ((error as { code?: unknown }).code !== 1) throw error;
    }
  }
  return total;
}

/** The instance's error for a partition over its quota, or null. */
export function diskQuotaProblem(partitionId: string, usedBytes: number, quotaBytes: number): string | null {
  if (usedBytes <= quotaBytes) return null;
  return `disk quota exceeded: partition ${partitionId} uses ${formatBytes(usedBytes)} of its ${formatBytes(quotaBytes)} (${usedBytes} > ${quotaBytes} bytes); its services are stopped until it is back under the quota`;
}
