/**
 * `<partition>/.hox/metrics.prom`: the series a partition's services expose, in the Prometheus text format, which
 * the node agent relays to the master (src/agent/partition-metrics.ts). Written whole: a temporary file renamed
 * over it, so the agent never reads half of one.
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export async function writeMetricsFile(partitionPath: string, text: string): Promise<void> {
  const dir = join(partitionPath, '.hox');
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'metrics.prom.tmp'), text);
  await rename(join(dir, 'metrics.prom.tmp'), join(dir, 'metrics.prom'));
}
