/**
 * The metrics a partition's own services expose, relayed by the node agent to the master with the node's own
 * (`hox.put.v1.node_metrics`), which serves them on `GET /metrics` labelled with the node, the partition, the
 * instance tree and the instance. Prometheus thus reaches every series through the one authenticated target it
 * already scrapes, and no service opens a port for it (a database member's metrics otherwise sit behind its
 * cluster's mutual TLS).
 *
 * A service writes `<partition>/.hox/metrics.prom` in the Prometheus text format, as node_exporter's textfile
 * collector reads it: the whole file at once (a temporary file renamed over it), again every few seconds. The
 * agent reads it as it reads `.hox/publish.json` (no link followed, a regular file of the partition's user, at
 * most {@link MAX_METRICS_FILE_BYTES}), ignores it when older than {@link STALE_AFTER_MS} (its writer is gone, and
 * its last figures would lie), and keeps what it can vouch for: families named as Prometheus allows and not in
 * the platform's own `hox_` namespace, numeric values, at most the bounds of `PARTITION_METRICS_LIMITS`. What it
 * drops it says in the node's log, once per partition and reason.
 */
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import type { RequestOf } from '../client/master-client.js';
import { PARTITION_METRICS_LIMITS as LIMITS } from '../protocol/schemas.js';
import type { FormattedPartition } from './format/partition-formatter.js';
import { readRuntimeFile } from './publish/runtime-file.js';

export type PartitionMetricsEntry = NonNullable<RequestOf<'reportNodeMetrics'>['metrics']['partitions']>[number];
export type MetricFamily = PartitionMetricsEntry['families'][number];
type Sample = MetricFamily['samples'][number];

/** The file, in the partition's `.hox`, a service writes its metrics to. */
export const METRICS_FILE = 'metrics.prom';
/** @default 262144 */
export const MAX_METRICS_FILE_BYTES = 256 * 1024;
/** A file not rewritten for this long is ignored. @default 300000 */
export const STALE_AFTER_MS = 5 * 60_000;

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
/** The platform's own series (`src/master/http/metrics.ts`): a partition may not pose as them. */
const RESERVED_PREFIX = 'hox_';

function value(text: string | undefined): Sample['value'] | undefined {
  if (text === undefined) return undefined;
  if (text === 'NaN' || text === '+Inf' || text === '-Inf') return text;
  if (text === 'Inf') return '+Inf';
  const n = Number(text);
  return text.trim() !== '' && Number.isFinite(n) ? n : undefined;
}

/**
 * The families of a metrics file that can be relayed, and what was dropped and why. Pure: never throws.
 */
export function parsePartitionMetrics(text: string): { families: MetricFamily[]; dropped: string[] } {
  const dropped = new Set<string>();
  let parsed: ReturnType<typeof parsePrometheusTextFormat>;
  try {
    // The parser drops a last line with no newline after it.
    parsed = parsePrometheusTextFormat(text.endsWith('\n') ? text : `${text}\n`);
  } catch (error) {
    return { families: [], dropped: [`not the Prometheus text format (${(error as Error).message.slice(0, 200)})`] };
  }
  const families: MetricFamily[] = [];
  let samples = 0;
  for (const family of parsed) {
    const name = family.name;
    if (!METRIC_NAME.test(name) || name.length > LIMITS.nameChars) {
      dropped.add(`a family with an invalid name`);
      continue;
    }
    if (name.startsWith(RESERVED_PREFIX)) {
      dropped.add(`${name}: the hox_ names are the platform's own`);
      continue;
    }
    if (families.length === LIMITS.families) {
      dropped.add(`families past the ${LIMITS.families} allowed`);
      break;
    }
    const out: Sample[] = [];
    const push = (suffix: Sample['suffix'], labels: Record<string, string>, v: Sample['value'] | undefined) => {
      if (v === undefined) dropped.add(`${name}: a value that is not a number`);
      else out.push({ suffix, labels, value: v });
    };
    for (const sample of family.metrics) {
      const labels = sample.labels ?? {};
      const names = Object.keys(labels);
      if (
        names.length + 1 > LIMITS.labels ||
        names.some((l) => !LABEL_NAME.test(l) || l.startsWith('__') || l.length > LIMITS.nameChars) ||
        Object.values(labels).some((v) => v.length > LIMITS.labelValueChars)
      ) {
        dropped.add(`${name}: labels Prometheus does not allow, or too many or too long`);
        continue;
      }
      if (family.type === 'HISTOGRAM' || family.type === 'SUMMARY') {
        const extra = family.type === 'HISTOGRAM' ? 'le' : 'quantile';
        for (const [at, count] of Object.entries(
          (family.type === 'HISTOGRAM' ? sample.buckets : sample.quantiles) ?? {},
        ))
          push(family.type === 'HISTOGRAM' ? '_bucket' : '', { ...labels, [extra]: at }, value(count));
        push('_sum', labels, value(sample.sum));
        push('_count', labels, value(sample.count));
      } else push('', labels, value(sample.value));
    }
    const room = LIMITS.samplesPerPartition - samples;
    if (out.length > room) dropped.add(`samples past the ${LIMITS.samplesPerPartition} allowed`);
    const kept = out.slice(0, Math.max(0, room));
    samples += kept.length;
    if (kept.length > 0)
      families.push({
        name,
        type: family.type.toLowerCase() as MetricFamily['type'],
        help: family.help.slice(0, LIMITS.helpChars),
        samples: kept,
      });
    if (samples === LIMITS.samplesPerPartition) break;
  }
  return { families, dropped: [...dropped] };
}

export interface PartitionMetricsOptions {
  partitions: () => readonly Pick<FormattedPartition, 'partitionId' | 'path' | 'uid' | 'gid'>[];
  /** The instance a partition hosts (not destroyed), or undefined. */
  instanceOn: (partitionId: string) => Promise<string | undefined>;
  log: (message: string) => void;
  clock: { nowMs(): number };
}

/** Reads every busy partition's metrics file for the next node metrics report. */
export class PartitionMetricsReader {
  readonly #options: PartitionMetricsOptions;
  /** What was last said of each partition, so a problem is logged once, not every period. */
  readonly #said = new Map<string, string>();

  constructor(options: PartitionMetricsOptions) {
    this.#options = options;
  }

  /** Never rejects: a partition that cannot be read is left out, and the reason logged once. */
  async read(): Promise<PartitionMetricsEntry[]> {
    const entries: PartitionMetricsEntry[] = [];
    for (const partition of this.#options.partitions().slice(0, LIMITS.partitions)) {
      const instanceGuid = await this.#options.instanceOn(partition.partitionId).catch(() => undefined);
      if (instanceGuid === undefined) {
        this.#said.delete(partition.partitionId);
        continue;
      }
      const file = await readRuntimeFile(partition, METRICS_FILE, MAX_METRICS_FILE_BYTES);
      let problem: string | undefined;
      if (file.kind === 'invalid') problem = file.message;
      else if (file.kind === 'text') {
        const ageMs = this.#options.clock.nowMs() - file.modifiedAtMs;
        if (ageMs > STALE_AFTER_MS)
          problem = `.hox/${METRICS_FILE} not rewritten for ${Math.round(ageMs / 1000)} s: ignored`;
        else {
          const { families, dropped } = parsePartitionMetrics(file.text);
          if (dropped.length > 0) problem = `.hox/${METRICS_FILE}: left out ${dropped.join('; ')}`;
          if (families.length > 0)
            entries.push({ compute_partition_id: partition.partitionId, instance_guid: instanceGuid, families });
        }
      }
      this.#say(partition.partitionId, problem);
    }
    return entries;
  }

  #say(partitionId: string, problem: string | undefined): void {
    const before = this.#said.get(partitionId);
    if (problem === before) return;
    if (problem === undefined) {
      this.#said.delete(partitionId);
      this.#options.log(`partition ${partitionId}: its metrics are read again`);
    } else {
      this.#said.set(partitionId, problem);
      this.#options.log(`partition ${partitionId}: ${problem.slice(0, 500)}`);
    }
  }
}
