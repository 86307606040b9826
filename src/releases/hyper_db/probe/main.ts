/**
 * Entry of the write probe: `node probe/main.js <probe.json>`. Exit 0 when a
 * write committed through the read-write endpoint, 1 when not (the reason on
 * stderr's last line, which the agent quotes), 2 on a bad invocation.
 */
import { readFileSync } from 'node:fs';
import { describeProbe, probeWrite, type WriteProbeConfig } from './write-probe.js';

const configPath = process.argv[2];
if (configPath === undefined) {
  process.stderr.write('usage: write-probe <probe.json>\n');
  process.exit(2);
}
let config: WriteProbeConfig;
try {
  config = JSON.parse(readFileSync(configPath, 'utf8')) as WriteProbeConfig;
} catch (error) {
  process.stderr.write(`cannot read ${configPath}: ${(error as Error).message}\n`);
  process.exit(2);
}
const result = await probeWrite(config);
const line = `${describeProbe(config, result)}\n`;
if (result.ok) process.stdout.write(line);
else process.stderr.write(line);
// Sockets to a hung server may linger: the verdict is in, leave now.
process.exit(result.ok ? 0 : 1);
