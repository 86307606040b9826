/** The `hox` program: one command per file under commands/. */
import { Command, Option } from 'commander';
import type { CommandEnv } from './command-env.js';
import { HOX_VERSION } from './version.js';
import { bangCommand } from './commands/bang-command.js';
import { completionCommand } from './commands/completion-command.js';
import { appCommand } from './commands/app-command.js';
import { dbCommand } from './commands/db-command.js';
import { destroyCommand } from './commands/destroy-command.js';
import { listCommand } from './commands/list-command.js';
import { loginCommand } from './commands/login-command.js';
import { logsCommand } from './commands/logs-command.js';
import { masterCommand } from './commands/master-command.js';
import { nodeCommand } from './commands/node-command.js';
import { nodesCommand } from './commands/nodes-command.js';
import { registrationTokenCommand } from './commands/registration-token-command.js';
import { releasesCommand } from './commands/releases-command.js';
import { requestCommand } from './commands/request-command.js';
import { showCommand } from './commands/show-command.js';
import { supplyCommand } from './commands/supply-command.js';
import { upCommand } from './commands/up-command.js';
import { userCommand } from './commands/user-command.js';

export function buildProgram(env: CommandEnv): Command {
  // The token comes from HOX_TOKEN or the config file; --token is kept only to be refused (argv is public).
  const refusedInArgv = new Option('--token <token>').hideHelp();
  const program = new Command('hox')
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
  for (const make of [
    upCommand,
    masterCommand,
    nodeCommand,
    loginCommand,
    supplyCommand,
    releasesCommand,
    requestCommand,
    listCommand,
    showCommand,
    logsCommand,
    destroyCommand,
    bangCommand,
    dbCommand,
    appCommand,
    nodesCommand,
    registrationTokenCommand,
    userCommand,
  ])
    program.addCommand(make(env).exitOverride());
  program.addCommand(completionCommand(env, () => program).exitOverride());
  return program;
}
