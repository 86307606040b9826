/** Builds the master client for a command from flags, env and the config file, in that order. */
import type { Command } from 'commander';
import { MasterClient, type RequestOf, type ResponseOf } from '../client/master-client.js';
import type { RouteName } from '../protocol/routes.js';
import { HoxError } from '../shared/errors.js';
import { readCaFile, readConfigFile } from './cli-config.js';
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

/** Where the master URL and the token of a command came from, in words a user can act on. */
export interface ConnectionSources {
  url: string;
  token: string;
}

export function connect(env: CommandEnv, command: Command): MasterClient {
  const opts = globals(command);
  if (opts.token !== undefined) throw secretInArgv('--token', 'the environment variable HOX_TOKEN, or hox login');
  const file = readConfigFile(env.configPath);
  // An empty variable (HOX_MASTER_URL= ) is unset, not a master at ''.
  const fromEnv = { url: env.masterUrl || undefined, token: env.token || undefined };
  const url = opts.master ?? fromEnv.url ?? file.masterUrl;
  const token = fromEnv.token ?? file.token;
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
  const configFile = `the config file ${env.configPath}`;
  const ca = env.caFile ? readCaFile(env.caFile, 'HOX_CA_FILE') : file.masterCa;
  return new ExplainingClient(
    { url, token, ...(ca === undefined ? {} : { ca }) },
    {
      url: opts.master !== undefined ? '--master' : fromEnv.url !== undefined ? 'HOX_MASTER_URL' : configFile,
      token: fromEnv.token !== undefined ? 'the environment variable HOX_TOKEN' : configFile,
    },
  );
}

/** A master client whose refused-token and unreachable-master errors say where the token or URL came from. */
class ExplainingClient extends MasterClient {
  constructor(
    options: { url: string; token: string; ca?: string },
    private readonly sources: ConnectionSources,
  ) {
    super(options);
  }

  override async call<R extends RouteName>(
    route: R,
    body: RequestOf<R>,
    options: { signal?: AbortSignal } = {},
  ): Promise<ResponseOf<R>> {
    try {
      return await super.call(route, body, options);
    } catch (error) {
      throw explainConnectionError(error, this.sources);
    }
  }
}

/** The error as is, or with what to do when the token was refused or the master could not be reached. */
export function explainConnectionError(error: unknown, sources: ConnectionSources): unknown {
  if (!(error instanceof HoxError)) return error;
  const hint =
    error.code === 'HOX_UNAUTHENTICATED'
      ? `the token from ${sources.token} was refused: run hox login (or set HOX_TOKEN to a valid token)`
      : error.code === 'HOX_MASTER_UNREACHABLE'
        ? `is it running? Start one with hox up, or check the URL from ${sources.url}`
        : undefined;
  if (hint === undefined) return error;
  return new HoxError(error.code, `${error.message}; ${hint}`, {
    cause: error,
    ...(error.field === undefined ? {} : { field: error.field }),
  });
}
