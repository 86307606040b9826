/**
 * The whole `hox` program: one command per file under commands/, every one
 * built. `hox` itself builds only the command it runs (src/cli/program-loader.ts,
 * same order and names: test/cli-startup.test.ts compares the two).
 */
import type { Command } from 'commander';
import type { CommandEnv } from './command-env.js';
import { rootCommand } from './root-command.js';
import { alertsCommand } from './commands/alerts-command.js';
import { metricsCommand } from './commands/metrics-command.js';
import { auditCommand } from './commands/audit-command.js';
import { bangCommand } from './commands/bang-command.js';
import { completionCommand } from './commands/completion-command.js';
import { appCommand } from './commands/app-command.js';
import { cdnCommand } from './commands/cdn-command.js';
import { dbCommand } from './commands/db-command.js';
import { destroyCommand } from './commands/destroy-command.js';
import { listCommand } from './commands/list-command.js';
import { loginCommand } from './commands/login-command.js';
import { logsCommand } from './commands/logs-command.js';
import { masterCommand } from './commands/master-command.js';
import { nodeCommand } from './commands/node-command.js';
import { nodesCommand } from './commands/nodes-command.js';
import { pkiCommand } from './commands/pki-command.js';
import { registrationTokenCommand } from './commands/registration-token-command.js';
import { releasesCommand } from './commands/releases-command.js';
import { requestCommand } from './commands/request-command.js';
import { showCommand } from './commands/show-command.js';
import { supplyCommand } from './commands/supply-command.js';
import { upCommand } from './commands/up-command.js';
import { userCommand } from './commands/user-command.js';

export function buildProgram(env: CommandEnv): Command {
  const program = rootCommand(env);
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
    cdnCommand,
    nodesCommand,
    registrationTokenCommand,
    userCommand,
    auditCommand,
    alertsCommand,
    metricsCommand,
    pkiCommand,
  ])
    program.addCommand(make(env).exitOverride());
  program.addCommand(completionCommand(env, () => program).exitOverride());
  return program;
}
