/**
 * The `hox` root command without its subcommands: global options, help text,
 * output and exit behaviour. {@link buildProgram} (src/cli/program.ts) adds
 * every command to it; {@link loadProgram} (src/cli/program-loader.ts), what
 * `hox` runs, adds only the one the command line names.
 */
import { Command, Option } from 'commander';
import type { CommandEnv } from './command-env.js';
import { HOX_VERSION } from './version.js';

export function rootCommand(env: CommandEnv): Command {
  // The token comes from HOX_TOKEN or the config file; --token is kept only to be refused (argv is public).
  const refusedInArgv = new Option('--token <token>').hideHelp();
  return new Command('hox')
    .description('HyperOpenX: an open, sovereign cloud platform')
    .version(HOX_VERSION)
    .option('--master <url>', 'master URL (default: HOX_MASTER_URL, then the config file)')
    .addOption(refusedInArgv)
    .option('--json', 'machine-readable output')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({ writeOut: (s) => env.print(s.trimEnd()), writeErr: (s) => env.printErr(s.trimEnd()) })
    .addHelpText(
      'after',
      `
Exit codes: 0 ok, 1 failed, 2 bad usage or input, 3 master unreachable.

Start here:
  hox up                                   # master + local node on this machine
  hox request hello --release demo --wait  # deploy the demo release
  hox list; hox show hello; hox logs hello; hox destroy hello`,
    );
}

/** The root's options that take a value: what follows them on the command line is not the command's name. */
export const ROOT_OPTIONS_WITH_VALUE: readonly string[] = ['--master', '--token'];
