/**
 * The series partitions' services expose (`.hox/metrics.prom`, relayed by their node: `src/agent/partition-metrics.ts`),
 * in the Prometheus text format, for the master's `GET /metrics`.
 *
 * Each sample gets the labels the platform's own partition series have (node, partition, tree, instance, owner), from
 * the master's view of the partition and never from the file: a family reported for a partition whose instance
 * has changed since is left out. A label of the file with one of those names, or `job` (Prometheus keeps the
 * exposition's labels: `honor_labels`), is kept as `exported_<name>`, as Prometheus itself renames a clash. A
 * family named in the platform's `hox_` namespace is left out (the agent drops them already; a node is not
 * trusted with the platform's names either), and so is one whose type differs from the same name's first type.
 */
import type { Body } from '../../protocol/schemas.js';

type Reported = NonNullable<Body<'nodeMetricsReport'>['metrics']['partitions']>[number];
type Family = Reported['families'][number];

/**
 * The labels of a partition as the master knows it, or undefined when it hosts no instance now or not the one
 * the report was made for.
 */
export type PartitionLabels = (
  nodeId: string,
  partitionId: string,
) => { node: string; partition: string; tree: string; instance: string; owner: string } | undefined;

const OVERRIDDEN = new Set(['node', 'partition', 'tree', 'instance', 'owner', 'job']);

const escapeLabel = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
const escapeHelp = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');

/** Text for every node's relayed families, grouped by family as the format requires. */
export function relayedMetricsText(
  nodes: readonly { nodeId: string; partitions: readonly Reported[] }[],
  labelsOf: PartitionLabels,
): string {
  const families = new Map<string, { type: Family['type']; help: string; lines: string[] }>();
  for (const { nodeId, partitions } of nodes)
    for (const reported of partitions) {
      const own = labelsOf(nodeId, reported.compute_partition_id);
      if (own === undefined) continue;
      for (const family of reported.families) {
        if (family.name.startsWith('hox_')) continue;
        let out = families.get(family.name);
        if (out === undefined) {
          out = { type: family.type, help: family.help, lines: [] };
          families.set(family.name, out);
        } else if (out.type !== family.type) continue;
        for (const sample of family.samples) {
          const labels: Record<string, string> = {};
          for (const [name, value] of Object.entries(sample.labels))
            labels[OVERRIDDEN.has(name) ? `exported_${name}` : name] = value;
          Object.assign(labels, own);
          const text = Object.entries(labels)
            .map(([name, value]) => `${name}="${escapeLabel(value)}"`)
            .join(',');
          out.lines.push(`${family.name}${sample.suffix}{${text}} ${sample.value}`);
        }
      }
    }
  const text: string[] = [];
  for (const [name, family] of families) {
    if (family.lines.length === 0) continue;
    text.push(`# HELP ${name} ${escapeHelp(family.help)}`, `# TYPE ${name} ${family.type}`, ...family.lines);
  }
  return text.length === 0 ? '' : `${text.join('\n')}\n`;
}
