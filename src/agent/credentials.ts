/** The node's identity on disk: `<data-dir>/node.json` (mode 0600), written once at registration. */
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HoxError } from '../shared/errors.js';

export interface NodeCredentials {
  masterUrl: string;
  nodeId: string;
  token: string;
  /** The master's CA roots (PEM), learnt at registration from `--ca-file` or `--ca-pin`; absent: the system's CAs. */
  masterCa?: string;
}

const FILE = 'node.json';

export async function readCredentials(dataDir: string): Promise<NodeCredentials | undefined> {
  let text: string;
  try {
    text = await readFile(join(dataDir, FILE), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const parsed = JSON.parse(text) as Partial<NodeCredentials>;
  if (
    typeof parsed.nodeId !== 'string' ||
    typeof parsed.token !== 'string' ||
    typeof parsed.masterUrl !== 'string' ||
    (parsed.masterCa !== undefined && typeof parsed.masterCa !== 'string')
  )
    throw new HoxError('HOX_BAD_REQUEST', `${join(dataDir, FILE)} is damaged: register again with a new data dir`);
  return parsed as NodeCredentials;
}

export async function writeCredentials(dataDir: string, credentials: NodeCredentials): Promise<void> {
  await mkdir(dataDir, { recursive: true, mode: 0o711 });
  const tmp = join(dataDir, `${FILE}.tmp`);
  await writeFile(tmp, `${JSON.stringify(credentials, null, 2)}\n`, { mode: 0o600 });
  await chmod(tmp, 0o600);
  await rename(tmp, join(dataDir, FILE));
}
