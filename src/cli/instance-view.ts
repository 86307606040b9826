/**
 * How `hox show` says one instance: where it runs, its state, each promise's
 * latest result, its limits, what it was requested with (parameters, SLA) and
 * what it published (connection parameters). Secrets are masked unless
 * `reveal`, at any depth. Pure.
 */
import type { ResponseOf } from '../client/master-client.js';
import { formatValue, maskSecrets } from './output.js';
import { formatAge, formatPartitionUsage } from './partition-usage-view.js';

export type InstanceStatusView = ResponseOf<'listTreeStatus'>['result_list'][number]['instance_list'][number];
export type PromiseReportView = NonNullable<InstanceStatusView['promises']>;

const MASK = '••••••';
/** Environment variables (config vars, generated secrets, an addon's URL): every value may be a secret. */
const ENVIRONMENT_KEY = /^env$/i;

/**
 * Masks what looks secret at any depth, unless `reveal`: values under secret-looking keys, passwords inside
 * URLs (as connection parameters are masked) and every value of an environment (`env`), whose variables are
 * the app's config vars and secrets (as `hox app config list` masks them).
 */
export function maskParameters(params: Record<string, unknown>, reveal: boolean): Record<string, unknown> {
  if (reveal) return params;
  const shallow = maskSecrets(params, false);
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(shallow)) {
    if (value === MASK) out[key] = value;
    else if (ENVIRONMENT_KEY.test(key) && isObject(value))
      out[key] = Object.fromEntries(Object.keys(value).map((k) => [k, MASK]));
    else out[key] = maskNested(value);
  }
  return out;
}

function maskNested(value: unknown): unknown {
  if (Array.isArray(value)) return value.map((v) => (typeof v === 'string' ? maskUrl(v) : maskNested(v)));
  if (isObject(value)) return maskParameters(value, false);
  return value;
}

/** A password inside a URL, as {@link maskSecrets} masks it in a string value. */
function maskUrl(text: string): string {
  return text.replace(/(\/\/[^:/@\s]+:)[^@/\s]+@/g, `$1${MASK}@`);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * `promises: 2/3 ok (reported 12 s ago)`, then one line per promise failing (with its message and when it was
 * checked) or never run. An instance without a partition (a shared one) has no line: its host runs them.
 */
export function formatPromises(
  instance: Pick<InstanceStatusView, 'promises' | 'compute_partition_id' | 'state'>,
): string[] {
  const report = instance.promises;
  if (report === null) return instance.compute_partition_id === null ? [] : ['promises: not reported by the node yet'];
  const list = report.promise_list;
  const reported = `reported ${formatAge(report.reported_age_ms)}`;
  if (list.length === 0)
    return [
      `promises: none running${instance.state === 'started' ? '' : ` (instance ${instance.state})`} (${reported})`,
    ];
  const ok = list.filter((p) => p.result === 'ok').length;
  const neverRun = list.filter((p) => p.result === 'never_run').length;
  const head = `promises: ${ok}/${list.length} ok${neverRun === 0 ? '' : `, ${neverRun} never run yet`} (${reported})`;
  const lines = [head];
  for (const p of list) {
    if (p.result === 'failed')
      lines.push(
        `  failed ${p.name}: ${p.message ?? ''}${p.age_ms === null ? '' : ` (checked ${formatAge(p.age_ms)})`}`,
      );
    else if (p.result === 'never_run') lines.push(`  ${p.name}: never run yet`);
  }
  return lines;
}

/** `computer_guid=n1, anti_affinity=x`; null when no SLA was given. */
export function formatSla(sla: Record<string, unknown>): string | null {
  const entries = Object.entries(sla);
  if (entries.length === 0) return null;
  return entries.map(([k, v]) => `${k}=${formatValue(v)}`).join(', ');
}

/** The instance with its parameters and connection parameters masked unless `reveal` (what `--json` prints). */
export function maskInstance(instance: InstanceStatusView, reveal: boolean): InstanceStatusView {
  return {
    ...instance,
    parameters: maskParameters(instance.parameters, reveal),
    connection_parameters: maskParameters(instance.connection_parameters, reveal),
  };
}

/** The lines `hox show` prints for one instance (already masked: see {@link maskInstance}). */
export function formatInstance(i: InstanceStatusView): string[] {
  const depth = i.requester_guid === null ? '' : '  ';
  const where =
    i.waiting_for !== null
      ? i.waiting_for
      : i.shared
        ? `shared on ${i.host_instance_guid ?? 'no host'}`
        : `${i.computer_guid ?? '-'}/${i.compute_partition_id ?? '-'}`;
  const lines = [
    `- ${i.title} [${i.software_type}] ${i.instance_guid}`,
    `    release:  ${i.software_release_uri}`,
    `    where:    ${where}`,
    `    state:    requested ${i.state}, reported ${i.reported_state ?? '-'}`,
    `    status:   ${i.access_status_message}`,
  ];
  const [head, ...details] = formatPromises(i);
  if (head !== undefined) lines.push(`    ${head}`, ...details.map((d) => `      ${d.trimStart()}`));
  if (i.partition_usage !== null) lines.push(`    limits:   ${formatPartitionUsage(i.partition_usage)}`);
  else if (i.compute_partition_id !== null) lines.push('    limits:   not reported by the node yet');
  const sla = formatSla(i.sla_parameters);
  if (sla !== null) lines.push(`    sla:      ${sla}`);
  const parameters = Object.entries(i.parameters);
  lines.push(`    parameters:${parameters.length === 0 ? ' none' : ''}`);
  for (const [k, v] of parameters) lines.push(`      ${k} = ${formatValue(v)}`);
  const connection = Object.entries(i.connection_parameters);
  if (connection.length > 0) lines.push('    connection parameters:');
  for (const [k, v] of connection) lines.push(`      ${k} = ${formatValue(v)}`);
  return lines.map((line) => `${depth}${line}`);
}
