/**
 * The agent's side of logs through the master (src/master/log-relay.ts): it
 * long-polls the master for log requests addressed to its node, reads the
 * service logs of the partitions named (only those that run the instance the
 * request names), and answers. The node opens no port: it only connects out.
 *
 * Reads are bounded: the whole answer stays under the request's `max_bytes`
 * (JSON-encoded), each log under its share, at most `lines` lines from the
 * tail or 10,000 when following from an offset. Files are opened without
 * following symbolic links.
 */
import { constants } from 'node:fs';
import { open, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { MasterClient } from '../client/master-client.js';
import type { Body } from '../protocol/schemas.js';

type LogRequest = Body<'logRequestList'>['result_list'][number];
type NodeLog = Body<'logRequestAnswer'>['log_list'][number];

const WAIT_MS = 25_000;
const FOLLOW_LINES_MAX = 10_000;
/** Requests already taken are remembered this long (the master drops them after 60 s). */
const SEEN_TTL_MS = 120_000;
const SERVICE_LOG = /^([A-Za-z0-9][A-Za-z0-9_.-]{0,62})\.log$/;

export interface LogRelayOptions {
  nodeId: string;
  client: MasterClient;
  logDir: (partitionId: string) => string;
  /** The instance a partition runs now (undefined: none). */
  instanceOn: (partitionId: string) => Promise<string | undefined>;
  log: (message: string) => void;
}

/** Encoded size of a line in the answer (JSON string and separator). */
const encodedBytes = (line: string): number => Buffer.byteLength(JSON.stringify(line)) + 1;

/** Reads one log as asked: the last `lines` lines, or from `offset` on (follow). Undefined: not a regular file. */
export async function readServiceLog(
  path: string,
  options: { lines: number; offset: number | null; budgetBytes: number },
): Promise<Omit<NodeLog, 'instance_guid' | 'service'> | undefined> {
  let handle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) return undefined;
    const size = stat.size;
    const modified = Math.max(0, Math.floor(stat.mtimeMs));
    const budget = Math.max(1024, options.budgetBytes);
    if (options.offset === null) {
      // Tail: the last `budget` bytes at most, the first (partial) line dropped unless the file starts there.
      const start = Math.max(0, size - budget);
      const buffer = Buffer.alloc(size - start);
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, start);
      let text = buffer.subarray(0, bytesRead).toString('utf8');
      if (start > 0) text = text.slice(text.indexOf('\n') + 1);
      const all = text.split('\n');
      if (all.at(-1) === '') all.pop();
      const picked: string[] = [];
      let used = 0;
      for (let i = all.length - 1; i >= 0 && picked.length < options.lines; i -= 1) {
        const cost = encodedBytes(all[i]!);
        if (used + cost > budget) break;
        used += cost;
        picked.push(all[i]!);
      }
      picked.reverse();
      return {
        lines: picked,
        offset: start + bytesRead,
        truncated: picked.length < options.lines && (picked.length < all.length || start > 0),
        modified_at_ms: modified,
      };
    }
    // Follow: from the offset on, whole lines only; a file shorter than the offset was rotated (copy-truncate).
    let offset = options.offset > size ? 0 : options.offset;
    const buffer = Buffer.alloc(Math.min(size - offset, budget));
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, offset);
    const chunk = buffer.subarray(0, bytesRead);
    const lines: string[] = [];
    let used = 0;
    let at = 0;
    while (at < chunk.length && lines.length < FOLLOW_LINES_MAX) {
      const end = chunk.indexOf(0x0a, at);
      if (end === -1) break;
      const line = chunk.subarray(at, end).toString('utf8');
      const cost = encodedBytes(line);
      if (used + cost > budget && lines.length > 0) break;
      used += cost;
      lines.push(cost > budget ? line.slice(0, Math.floor(budget / 6)) : line);
      at = end + 1;
    }
    // One line longer than the whole share: give its start and move on rather than stall.
    if (lines.length === 0 && chunk.length === budget) {
      lines.push(chunk.toString('utf8').slice(0, Math.floor(budget / 6)));
      at = chunk.length;
    }
    offset += at;
    return {
      lines,
      offset,
      truncated: size - offset > budget || lines.length >= FOLLOW_LINES_MAX,
      modified_at_ms: modified,
    };
  } finally {
    await handle.close();
  }
}

/** Reads what a request asks for, from the partitions that run the instances it names. */
export async function answerLogRequest(
  request: LogRequest,
  options: Pick<LogRelayOptions, 'logDir' | 'instanceOn'>,
): Promise<{ log_list: NodeLog[]; error: string | null }> {
  const files: { instance_guid: string; service: string; path: string }[] = [];
  const moved: string[] = [];
  for (const { instance_guid, compute_partition_id } of request.instance_list) {
    if ((await options.instanceOn(compute_partition_id)) !== instance_guid) {
      moved.push(`${instance_guid} (not on partition ${compute_partition_id} any more)`);
      continue;
    }
    const dir = options.logDir(compute_partition_id);
    const names = await readdir(dir).catch(() => [] as string[]);
    for (const name of names.sort()) {
      const service = SERVICE_LOG.exec(name)?.[1];
      if (service === undefined || (request.service !== null && request.service !== service)) continue;
      files.push({ instance_guid, service, path: join(dir, name) });
    }
  }
  const share = Math.floor((request.max_bytes * 0.9) / Math.max(1, files.length)) - 200;
  const offsets = new Map((request.offset_list ?? []).map((o) => [`${o.instance_guid}/${o.service}`, o.offset]));
  const log_list: NodeLog[] = [];
  for (const f of files) {
    const read = await readServiceLog(f.path, {
      lines: request.lines,
      offset: request.offset_list === null ? null : (offsets.get(`${f.instance_guid}/${f.service}`) ?? 0),
      budgetBytes: share,
    });
    if (read !== undefined) log_list.push({ instance_guid: f.instance_guid, service: f.service, ...read });
  }
  return { log_list, error: moved.length === 0 ? null : `instances moved: ${moved.join(', ')}` };
}

/** The loop: long-polls for requests, answers each once. */
export class LogRelay {
  private stopped = false;
  private readonly abort = new AbortController();
  private loopDone: Promise<void> | undefined;
  /** Request ids taken (answered or being answered), with when: the master is told not to hand them again. */
  private readonly seen = new Map<string, number>();

  constructor(private readonly options: LogRelayOptions) {}

  start(): void {
    this.loopDone = this.loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    await this.loopDone;
  }

  private async loop(): Promise<void> {
    const { client, nodeId, log } = this.options;
    let failures = 0;
    while (!this.stopped) {
      try {
        const now = Date.now();
        for (const [id, at] of this.seen) if (now - at > SEEN_TTL_MS) this.seen.delete(id);
        const { result_list } = await client.call(
          'listLogRequests',
          { computer_guid: nodeId, timeout_ms: WAIT_MS, seen_list: [...this.seen.keys()].slice(-100) },
          { signal: this.abort.signal },
        );
        failures = 0;
        for (const request of result_list) {
          if (this.seen.has(request.request_id)) continue;
          this.seen.set(request.request_id, Date.now());
          void this.answer(request);
        }
      } catch (error) {
        if (this.stopped) break;
        failures += 1;
        log(`log requests: master unreachable or failing (${String(error)}); retrying`);
        await sleep(Math.min(10_000, 250 * 2 ** Math.min(failures, 6)), undefined, {
          signal: this.abort.signal,
        }).catch(() => undefined);
      }
    }
  }

  private async answer(request: LogRequest): Promise<void> {
    const { client, nodeId, log } = this.options;
    try {
      const answer = await answerLogRequest(request, this.options);
      await client.call('answerLogRequest', { computer_guid: nodeId, request_id: request.request_id, ...answer });
    } catch (error) {
      // The message only: never the lines.
      log(`log request ${request.request_id}: cannot answer (${error instanceof Error ? error.message : 'error'})`);
    }
  }
}
