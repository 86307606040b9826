/** The last lines of every service log of an instance tree's instances, on a test platform (for error messages). */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { HyperDbPlatform } from './hyperdb-platform.js';

export async function appLogs(p: HyperDbPlatform, title: string, lines = 25): Promise<string> {
  const [tree] = (await p.admin.call('listTreeStatus', { title })).result_list;
  const out: string[] = [];
  for (const i of tree?.instance_list ?? []) {
    const node = p.nodes.find((n) => n.id === i.computer_guid);
    if (node === undefined || i.compute_partition_id === null) continue;
    const dir = join(node.dataDir, 'logs', i.compute_partition_id);
    if (!existsSync(dir)) continue;
    for (const f of readdirSync(dir))
      out.push(`--- ${i.title} ${f} ---`, readFileSync(join(dir, f), 'utf8').split('\n').slice(-lines).join('\n'));
  }
  return out.join('\n');
}
