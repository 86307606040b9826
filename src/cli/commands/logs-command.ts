/**
 * `hox logs TITLE`: the service logs of an instance tree's instances, merged
 * by time, from whatever node runs them. Always through the master (the
 * nodes' agents read their own files and answer it): one path whether the node
 * is this machine or another, the master checks the caller owns the tree, and
 * no node opens a port. `hox app logs` is the same for an app's replicas.
 */
import { Command, Option } from 'commander';
import { setTimeout as sleep } from 'node:timers/promises';
import type { MasterClient } from '../../client/master-client.js';
import type { Body } from '../../protocol/schemas.js';
import { HoxError } from '../../shared/errors.js';
import { positiveInteger } from '../action-context.js';
import type { CommandEnv } from '../command-env.js';
import { connect, globals } from '../connect.js';
import { formatLogLine, mergeLogLines, type LogChunk, type MergedLine } from '../log-lines.js';

const FOLLOW_INTERVAL_MS = 1000;
/** Bounds `--follow` (a day at one read a second) so no loop runs unbounded. */
const FOLLOW_ROUNDS_MAX = 86_400;

export interface TreeLogOptions {
  title: string;
  service?: string;
  lines: number;
  follow: boolean;
  json: boolean;
  /** Keeps only the lines this accepts (`hox app logs --process`). */
  keep?: (line: MergedLine) => boolean;
}

type TreeLogResult = Body<'treeLogResult'>;

function chunks(result: TreeLogResult): LogChunk[] {
  return result.log_list.map((l) => ({
    instance: l.instance_title,
    service: l.service,
    node: l.computer_guid,
    lines: l.lines,
    modifiedAtMs: l.modified_at_ms,
  }));
}

/** Prints a tree's logs (and, following, new lines until Ctrl-C); shared by `hox logs` and `hox app logs`. */
export async function printTreeLogs(env: CommandEnv, client: MasterClient, options: TreeLogOptions): Promise<void> {
  const print = (lines: MergedLine[]): void => {
    for (const line of lines) {
      if (options.keep !== undefined && !options.keep(line)) continue;
      env.print(
        options.json
          ? JSON.stringify({
              time: line.time,
              instance: line.instance,
              service: line.service,
              node: line.node,
              line: line.text,
            })
          : formatLogLine(line),
      );
    }
  };
  const warned = new Set<string>();
  const warn = (result: TreeLogResult): void => {
    for (const p of result.problem_list) {
      if (warned.has(p.message)) continue;
      warned.add(p.message);
      env.printErr(`warning: ${p.message}`);
    }
  };
  const service = options.service === undefined ? {} : { service: options.service };
  const first = await client.call('readTreeLogs', { title: options.title, lines: options.lines, ...service });
  warn(first);
  if (first.log_list.length === 0 && first.problem_list.length === 0 && !options.follow)
    throw new HoxError(
      'HOX_INSTANCE_NOT_FOUND',
      `no log${options.service === undefined ? '' : ` of service '${options.service}'`} yet in '${options.title}'`,
    );
  print(mergeLogLines(chunks(first)));
  if (!options.follow) return;

  const offsets = new Map<string, { instance_guid: string; service: string; offset: number }>();
  const remember = (result: TreeLogResult): void => {
    for (const l of result.log_list)
      offsets.set(`${l.instance_guid}/${l.service}`, {
        instance_guid: l.instance_guid,
        service: l.service,
        offset: l.offset,
      });
  };
  remember(first);
  let stop = false;
  void env.stopped.then(() => (stop = true));
  for (let round = 0; !stop && round < FOLLOW_ROUNDS_MAX; round += 1) {
    await sleep(FOLLOW_INTERVAL_MS);
    if (stop) break;
    let next: TreeLogResult;
    try {
      next = await client.call('readTreeLogs', {
        title: options.title,
        ...service,
        offset_list: [...offsets.values()],
      });
    } catch (error) {
      // A node or the master briefly away: say so once, keep following.
      if (error instanceof HoxError && error.retryable) {
        warn({ log_list: [], problem_list: [{ computer_guid: '', message: error.message }] });
        continue;
      }
      throw error;
    }
    warn(next);
    remember(next);
    print(mergeLogLines(chunks(next)));
  }
}

export function logsCommand(env: CommandEnv): Command {
  return new Command('logs')
    .description("Print the service logs of an instance tree's instances, merged by time, from any node")
    .argument('<title>', 'instance tree title')
    .option('--service <name>', 'only this service (e.g. keeper, postgres, http, runner, caddy)')
    .addOption(new Option('--lines <n>', 'last lines of each log').argParser(positiveInteger).default(50))
    .option('--follow', 'keep printing new lines until Ctrl-C')
    .addHelpText(
      'after',
      `
Each line reads TIME INSTANCE/SERVICE | TEXT, TIME in UTC ISO 8601 where the line carried a time.
The nodes running the instances read their logs and answer through the master (at most 10 s;
a node that does not answer is named with its last contact).

Examples:
  hox logs hello
  hox logs hello --service http --follow
  hox logs db --service keeper --lines 20     # every member's keeper, whatever node runs it`,
    )
    .action(async (title: string, opts: { service?: string; lines: number; follow?: boolean }, command: Command) => {
      await printTreeLogs(env, connect(env, command), {
        title,
        ...(opts.service === undefined ? {} : { service: opts.service }),
        lines: opts.lines,
        follow: opts.follow === true,
        json: globals(command).json === true,
      });
    });
}

/** `hox app logs APP [--process web]`: the replicas' runner logs, optionally one process type's lines only. */
export function appLogsSubcommand(env: CommandEnv): Command {
  return new Command('logs')
    .description("An app's logs across its replicas, merged by time: build, release and process output")
    .argument('<name>', 'app name')
    .option('--process <type>', "only this process type's output (web, a worker, build, release)")
    .addOption(new Option('--lines <n>', 'last lines of each replica').argParser(positiveInteger).default(100))
    .option('--follow', 'keep printing new lines until Ctrl-C')
    .addHelpText('after', '\nExamples:\n  hox app logs crm\n  hox app logs crm --process web --follow')
    .action(async (name: string, opts: { process?: string; lines: number; follow?: boolean }, command: Command) => {
      const type = opts.process;
      if (type !== undefined && !/^[A-Za-z0-9_-]{1,63}$/.test(type))
        throw new HoxError('HOX_BAD_REQUEST', `'${type}' is not a process type (letters, digits, _ and -)`, {
          field: '--process',
        });
      // The runner prefixes each line of a process with `[<type>[.<n>] v<release>]`.
      const prefix = type === undefined ? undefined : new RegExp(`^\\[${type}(\\.\\d+)? v\\d+\\]`);
      await printTreeLogs(env, connect(env, command), {
        title: name,
        service: 'runner',
        lines: opts.lines,
        follow: opts.follow === true,
        json: globals(command).json === true,
        ...(prefix === undefined ? {} : { keep: (line: MergedLine) => prefix.test(line.text) }),
      });
    });
}
