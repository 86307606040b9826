/** Entry of a replica's runner service: `node runner/main.js <runner.json> <partition path>`. */
import { Runner } from './runner.js';

const [configPath, partitionPath] = process.argv.slice(2);
if (configPath === undefined || partitionPath === undefined) {
  process.stderr.write('usage: runner <runner.json> <partition path>\n');
  process.exit(2);
}
const runner = new Runner(configPath, partitionPath, (line) =>
  process.stdout.write(`${new Date().toISOString()} ${line}\n`),
);
const stop = (): void => {
  runner.stop().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
runner.start().catch((error: unknown) => {
  process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
