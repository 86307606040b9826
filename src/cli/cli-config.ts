/**
 * Where the CLI finds its master, token and the master's CA: flags, then env
 * (HOX_MASTER_URL, HOX_TOKEN, HOX_CA_FILE), then the config file written by
 * `hox login` / `hox up`
 * (`$HOX_CONFIG`, else `$XDG_CONFIG_HOME/hox/config.json`, else
 * `~/.config/hox/config.json`, mode 0600).
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { HoxError } from '../shared/errors.js';

export interface CliConfigFile {
  masterUrl?: string;
  token?: string;
  /** The master's CA roots (PEM), saved by `hox up` and `hox login --ca-pin/--ca-file`. */
  masterCa?: string;
  /** Set by `hox up`: which node runs on this machine and where its data is (for people and scripts; `hox logs` reads through the master). */
  localNodeId?: string;
  localNodeDataDir?: string;
}

export function configPath(env: { HOX_CONFIG?: string | undefined; XDG_CONFIG_HOME?: string | undefined }): string {
  if (env.HOX_CONFIG) return env.HOX_CONFIG;
  return join(env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'hox', 'config.json');
}

export function readConfigFile(path: string): CliConfigFile {
  if (!existsSync(path)) return {};
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as CliConfigFile;
  } catch (error) {
    throw new HoxError('HOX_BAD_REQUEST', `config file ${path} is not valid JSON: fix or delete it`, { cause: error });
  }
}

export function writeConfigFile(path: string, config: CliConfigFile): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}

/** Reads a PEM file of CA roots (`--ca-file`, HOX_CA_FILE); a clear error when it is missing or holds none. */
export function readCaFile(path: string, field: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new HoxError('HOX_BAD_REQUEST', `${field} '${path}' cannot be read: ${(error as Error).message}`, {
      field,
      cause: error,
    });
  }
  if (!text.includes('-----BEGIN CERTIFICATE-----'))
    throw new HoxError('HOX_BAD_REQUEST', `${field} '${path}' holds no PEM certificate`, { field });
  return text;
}
