/** Builds the master client for a command from flags, env and the config file, in that order. */
import type { Command } from 'commander';
import { MasterClient } from '../client/master-client.js';
import { HoxError } from '../shared/errors.js';
import { readConfigFile } from './cli-config.js';
import type { CommandEnv } from './command-env.js';
import { secretInArgv } from './secret-input.js';

export interface GlobalOptions {
  master?: string;
  token?: string;
  json?: boolean;
}

export function globals(command: Command): GlobalOptions {
  return command.optsWithGlobals<GlobalOptions>();
}

export function connect(env: CommandEnv, command: Command): MasterClient {
  const opts = globals(command);
  if (opts.token !== undefined) throw secretInArgv('--token', 'the environment variable HOX_TOKEN, or hox login');
  const file = readConfigFile(env.configPath);
  const url = opts.master ?? env.masterUrl ?? file.masterUrl;
  const token = env.token ?? file.token;
  if (url === undefined)
    throw new HoxError(
      'HOX_BAD_REQUEST',
      'no master: pass --master URL, set HOX_MASTER_URL, or run hox login / hox up',
      {
        field: '--master',
      },
    );
  if (token === undefined)
    throw new HoxError('HOX_BAD_REQUEST', 'no token: set HOX_TOKEN, or run hox login / hox up', {
      field: '--token',
    });
  return new MasterClient({ url, token });
}
