/**
 * The `hox` program as the binary builds it: the root, plus only the command
 * the command line names, imported when needed. `hox list` then neither loads
 * nor builds `hox db`'s thirty options, the up/master/node commands or their
 * helpers (bench/cli-startup, docs/benchmarks.md). With no command, `help`,
 * `completion` or an unknown name, every command is built, as buildProgram()
 * does (the same order: test/cli-startup.test.ts compares their help).
 */
import type { Command } from 'commander';
import type { CommandEnv } from './command-env.js';
import { ROOT_OPTIONS_WITH_VALUE, rootCommand } from './root-command.js';

type CommandFactory = (env: CommandEnv) => Command;

const core = () => import('./core-commands.js');

/** Every command but `completion`, in the order of `hox --help`, with the module that builds it. */
const COMMANDS: readonly (readonly [name: string, load: () => Promise<CommandFactory>])[] = [
  ['up', async () => (await core()).upCommand],
  ['master', async () => (await core()).masterCommand],
  ['node', async () => (await core()).nodeCommand],
  ['login', async () => (await core()).loginCommand],
  ['supply', async () => (await core()).supplyCommand],
  ['releases', async () => (await core()).releasesCommand],
  ['request', async () => (await core()).requestCommand],
  ['list', async () => (await core()).listCommand],
  ['show', async () => (await core()).showCommand],
  ['logs', async () => (await core()).logsCommand],
  ['destroy', async () => (await core()).destroyCommand],
  ['bang', async () => (await core()).bangCommand],
  ['db', async () => (await import('./commands/db-command.js')).dbCommand],
  ['app', async () => (await import('./commands/app-command.js')).appCommand],
  ['cdn', async () => (await import('./commands/cdn-command.js')).cdnCommand],
  ['nodes', async () => (await core()).nodesCommand],
  ['registration-token', async () => (await core()).registrationTokenCommand],
  ['user', async () => (await core()).userCommand],
  ['audit', async () => (await core()).auditCommand],
  ['alerts', async () => (await core()).alertsCommand],
  ['metrics', async () => (await core()).metricsCommand],
  ['pki', async () => (await core()).pkiCommand],
];

/** The names of every command `hox` has, `completion` last (as in its help). */
export const COMMAND_NAMES: readonly string[] = [...COMMANDS.map(([name]) => name), 'completion'];

/** The first word of `args` (argv after the script) that is not a root option or its value. */
export function commandNameOf(args: readonly string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') return args[i + 1];
    if (!arg.startsWith('-')) return arg;
    if (ROOT_OPTIONS_WITH_VALUE.includes(arg)) i++;
  }
  return undefined;
}

/** Builds the program for `args`: with the named command only when there is one, else with every command. */
export async function loadProgram(env: CommandEnv, args: readonly string[]): Promise<Command> {
  const program = rootCommand(env);
  const name = commandNameOf(args);
  const only = COMMANDS.find(([command]) => command === name);
  if (only !== undefined) {
    program.addCommand((await only[1]())(env).exitOverride());
    return program;
  }
  const factories = await Promise.all(COMMANDS.map(([, load]) => load()));
  for (const make of factories) program.addCommand(make(env).exitOverride());
  const { completionCommand } = await core();
  program.addCommand(completionCommand(env, () => program).exitOverride());
  return program;
}
