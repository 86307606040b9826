/**
 * The app root's endpoint program: loads the public Caddy's configuration
 * (round robin over the replicas that serve) through Caddy's admin socket
 * whenever `endpoint.json` changes — and again every few seconds, which is
 * a no-op for Caddy unless it restarted with its initial configuration —
 * then publishes what is routed, so that a deploy is reported done only
 * once the public endpoint sends traffic to the new replicas.
 *
 * `node endpoint/main.js <endpoint.json> <partition path>`
 */
import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { oneAtATime } from '../../../release-kit/one-at-a-time.js';
import { runProgram, type StopProgram } from '../../../release-kit/run-program.js';
import { writeFileDurably } from '../../../shared/durable-file.js';
import { adminReady, loadConfig } from '../caddy-admin.js';
import { publicEndpointConfig } from '../caddy-config.js';
import type { EndpointConfig, EndpointStatus } from '../protocol.js';

const REFRESH_MS = 5000;

const [configPath, partitionPath] = process.argv.slice(2);
if (configPath === undefined || partitionPath === undefined) {
  process.stderr.write('usage: endpoint <endpoint.json> <partition path>\n');
  process.exit(2);
}
const log = (line: string) => process.stdout.write(`${new Date().toISOString()} ${line}\n`);

let published = '';

async function apply(): Promise<void> {
  const config = JSON.parse(readFileSync(configPath!, 'utf8')) as EndpointConfig;
  await loadConfig(
    config.adminSocket,
    publicEndpointConfig(
      { storageDir: config.storageDir, adminSocket: config.adminSocket, listen: config.listen },
      config.upstreams,
      config.app,
    ),
  );
  const routed = [...config.upstreams].sort();
  const key = JSON.stringify(routed);
  if (key === published) return;
  const status: EndpointStatus = { routed, routed_at: new Date().toISOString() };
  await writeFileDurably(join(partitionPath!, '.hox', 'publish.json'), `${JSON.stringify(status)}\n`, { mode: 0o640 });
  published = key;
  log(`routing to ${routed.length === 0 ? 'no replica' : routed.join(', ')}`);
}

/** One application at a time; a change meanwhile runs another. */
const poke = oneAtATime(apply, (error) => log(`could not configure the public endpoint: ${error.message}`));

async function main(): Promise<StopProgram> {
  const { adminSocket } = JSON.parse(readFileSync(configPath!, 'utf8')) as EndpointConfig;
  for (let i = 0; i < 150 && !(await adminReady(adminSocket)); i++) await sleep(200);
  watchFile(configPath!, { interval: 200 }, poke);
  poke();
  const timer = setInterval(poke, REFRESH_MS);
  return () => {
    clearInterval(timer);
    unwatchFile(configPath!);
  };
}

runProgram(main);
