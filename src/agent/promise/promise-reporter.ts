/**
 * Tells the master each promise's own result (`hox.put.v1.promise_result`),
 * which `hox show` displays: name, ok / failed / never run, message and when
 * it was checked.
 *
 * Asked after every promise run and whenever a partition's set of promises
 * changes (the runner's `onUpdate`), for that partition only; sends a
 * partition's promises only when what a person reads changed since the last
 * report the master accepted (a promise added or removed, a result or a
 * message changed, see {@link promisesChanged}), and at least every
 * `refreshMs` while its promises run, so the check times shown stay near the
 * truth. Promises run every 10 s: reporting each run would write for nothing.
 * Reports never overlap (asking during one makes exactly one more), never
 * block a convergence, and never throw: a failure is logged and the
 * partitions go again at their next run.
 *
 * Messages leave the node bounded (300 characters) and with credentials
 * masked: a URL's password and `password=…`-like pairs a command printed.
 */
import type { MasterClient, RequestOf } from '../../client/master-client.js';
import { PROMISE_REPORT_LIMITS } from '../../protocol/schemas.js';
import { sendDroppingStale } from '../report-sender.js';
import type { PromiseResult } from './check-promise.js';

export type PromiseReportEntry = RequestOf<'reportPromiseResults'>['promise_report_list'][number];

/** What the reporter reads of the runner. */
export interface PlannedPromises {
  planned(partitionId: string): { name: string; result: PromiseResult | undefined }[] | undefined;
}

export interface PromiseReporterOptions {
  nodeId: string;
  /** The node token's client. */
  client: MasterClient;
  /** The instance a partition hosts (not destroyed), or undefined. */
  instanceOn: (partitionId: string) => Promise<string | undefined>;
  runner: PlannedPromises;
  log: (message: string) => void;
  clock: { nowMs(): number };
  /** A partition's report is sent again after this long even if nothing changed. @default 300000 */
  refreshMs?: number;
}

/** The longest age the master accepts (7 days): a result older than that is sent as that old. */
const AGE_MAX_MS = 7 * 86_400_000;
const MASK = '••••••';
/** A `key=value` or `key: value` pair whose key ends like a credential (`PGPASSWORD`, `--password`, `api_key`). */
const SECRET_PAIR =
  /\b([\w-]*?(?:passw(?:or)?d|passphrase|pass|secret|token|api[_-]?key|(?:secret|private|access)[_-]?key|credentials?))(\s*[=:]\s*)("[^"]*"|'[^']*'|[^\s,;&'"\])}]+)/gi;

/** The message with credentials masked, at most `maxChars` long. Pure. */
export function safePromiseMessage(message: string, maxChars: number = PROMISE_REPORT_LIMITS.messageChars): string {
  const masked = message
    .replace(/(\/\/[^:/@\s]+:)[^@/\s]+@/g, `$1${MASK}@`)
    .replace(SECRET_PAIR, (_all, key: string, separator: string) => `${key}${separator}${MASK}`);
  return truncate(masked, maxChars);
}

function truncate(text: string, maxChars: number): string {
  return text.length <= maxChars ? text : `${text.slice(0, maxChars - 1)}…`;
}

/**
 * One partition's report from the runner's view of it, in the plan's order. Over the bound, failing promises
 * go first (they are what a person looks for) and the rest fill what is left. Pure.
 */
export function promiseReportEntry(
  partitionId: string,
  instanceGuid: string,
  planned: readonly { name: string; result: PromiseResult | undefined }[],
  nowMs: number,
): PromiseReportEntry {
  const max = PROMISE_REPORT_LIMITS.promisesPerInstance;
  let kept = planned;
  if (planned.length > max) {
    const failing = new Set(planned.filter((p) => p.result?.ok === false).slice(0, max));
    const others = planned.filter((p) => !failing.has(p)).slice(0, max - failing.size);
    const chosen = new Set([...failing, ...others]);
    kept = planned.filter((p) => chosen.has(p));
  }
  return {
    compute_partition_id: partitionId,
    instance_guid: instanceGuid,
    promise_list: kept.map(({ name, result }) => ({
      name: truncate(name, PROMISE_REPORT_LIMITS.nameChars),
      result: result === undefined ? 'never_run' : result.ok ? 'ok' : 'failed',
      message: result === undefined ? null : safePromiseMessage(result.message),
      age_ms:
        result === undefined
          ? null
          : Math.min(AGE_MAX_MS, Math.max(0, Math.round(nowMs - (result.checkedAtMs + result.durationMs)))),
    })),
  };
}

/** Whether `next` says something `previous` did not; ages are not compared (the refresh keeps them near). Pure. */
export function promisesChanged(previous: PromiseReportEntry | undefined, next: PromiseReportEntry): boolean {
  if (previous === undefined) return true;
  const readable = (e: PromiseReportEntry) =>
    JSON.stringify([e.instance_guid, e.promise_list.map((p) => [p.name, p.result, p.message])]);
  return readable(previous) !== readable(next);
}

export class PromiseReporter {
  readonly #options: PromiseReporterOptions;
  /** The last report the master accepted, per partition, and when it was sent. */
  readonly #sent = new Map<string, { entry: PromiseReportEntry; atMs: number }>();
  /** Partitions to look at in the next report. */
  readonly #asked = new Set<string>();
  #running: Promise<void> | undefined;
  #stopped = false;

  constructor(options: PromiseReporterOptions) {
    this.#options = options;
  }

  /** Reports the partition's promises if they changed, now or right after the report in flight. Never rejects. */
  request(partitionId: string): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    this.#asked.add(partitionId);
    this.#running ??= (async () => {
      try {
        while (this.#asked.size > 0 && !this.#stopped) {
          const partitions = [...this.#asked];
          this.#asked.clear();
          await this.#report(partitions).catch((error: unknown) => {
            // They go again at their next run.
            this.#options.log(`cannot report promises: ${error instanceof Error ? error.message : String(error)}`);
          });
        }
      } finally {
        this.#running = undefined;
      }
    })();
    return this.#running;
  }

  /** No more reports; waits for the one in flight. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#running;
  }

  async #report(partitions: readonly string[]): Promise<void> {
    const { clock, runner } = this.#options;
    const refreshMs = this.#options.refreshMs ?? 300_000;
    const due: PromiseReportEntry[] = [];
    for (const partitionId of partitions) {
      const instanceGuid = await this.#options.instanceOn(partitionId);
      const planned = runner.planned(partitionId);
      if (instanceGuid === undefined) {
        this.#sent.delete(partitionId);
        continue;
      }
      // Not configured since the agent started: what it must run is not known yet, and the master keeps the
      // previous report until the convergence says.
      if (planned === undefined) continue;
      const entry = promiseReportEntry(partitionId, instanceGuid, planned, clock.nowMs());
      const last = this.#sent.get(partitionId);
      if (last !== undefined && clock.nowMs() - last.atMs < refreshMs && !promisesChanged(last.entry, entry)) continue;
      due.push(entry);
    }
    const sent = await sendDroppingStale(due, {
      list: 'promise_report_list',
      what: 'promise report',
      send: (entries) =>
        this.#options.client.call('reportPromiseResults', {
          computer_guid: this.#options.nodeId,
          promise_report_list: entries,
        }),
      log: this.#options.log,
    });
    const sentAtMs = clock.nowMs();
    for (const entry of sent) this.#sent.set(entry.compute_partition_id, { entry, atMs: sentAtMs });
  }
}
