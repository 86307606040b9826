/** The `hox` program: one command per file under commands/. */
import { Command } from 'commander';
import { masterCommand, type MasterCommandEnv } from './commands/master-command.js';

export function buildProgram(env: MasterCommandEnv): Command {
  const program = new Command('hox')
    .description('HyperOpenX: an open, sovereign cloud platform')
    .version('0.1.0')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  program.addCommand(masterCommand(env));
  return program;
}
