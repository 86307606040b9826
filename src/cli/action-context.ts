/**
 * What the `hox db` and `hox app` subcommands share: the context their
 * actions get (client, --json, where results and progress go), the option
 * parsers, and commander's error output routed through the command env.
 */
import type { Command } from 'commander';
import { InvalidArgumentError, Option } from 'commander';
import type { MasterClient } from '../client/master-client.js';
import type { CommandEnv } from './command-env.js';
import { connect, globals } from './connect.js';

export interface ActionContext {
  client: MasterClient;
  json: boolean;
  /** Results (stdout). */
  print: (line: string) => void;
  /** Progress: stdout for people (indented), stderr with --json. */
  progress: (line: string) => void;
}

export function actionContext(env: CommandEnv, command: Command): ActionContext {
  const json = globals(command).json === true;
  return {
    client: connect(env, command),
    json,
    print: env.print,
    progress: (line) => (json ? env.printErr(line) : env.print(`  ${line}`)),
  };
}

export function positiveInteger(value: string): number {
  if (!/^\d+$/.test(value) || Number.parseInt(value, 10) <= 0)
    throw new InvalidArgumentError(`'${value}' is not a positive integer.`);
  return Number.parseInt(value, 10);
}

export function timeoutOption(defaultSeconds: number): Option {
  return new Option('--timeout <seconds>', 'give up waiting after this long')
    .argParser(positiveInteger)
    .default(defaultSeconds);
}

/** Exit codes instead of process.exit, usage hints, and output through the env — for a command and its subcommands. */
export function routeOutput(env: CommandEnv, command: Command): Command {
  command
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ writeOut: (s) => env.print(s.trimEnd()), writeErr: (s) => env.printErr(s.trimEnd()) });
  for (const child of command.commands) routeOutput(env, child.exitOverride());
  return command;
}
