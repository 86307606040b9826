/** The `hox` program: one command per file under commands/. */
import { Command } from 'commander';
import type { CommandEnv } from './command-env.js';
import { masterCommand } from './commands/master-command.js';
import { nodeCommand } from './commands/node-command.js';

export function buildProgram(env: CommandEnv): Command {
  const program = new Command('hox')
    .description('HyperOpenX: an open, sovereign cloud platform')
    .version('0.1.0')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  program.addCommand(masterCommand(env));
  program.addCommand(nodeCommand(env));
  return program;
}
