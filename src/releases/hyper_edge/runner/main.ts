/** Entry of a replica's runner service: `node runner/main.js <runner.json> <partition path>`. */
import { runProgram } from '../../../release-kit/run-program.js';
import { Runner } from './runner.js';

const [configPath, partitionPath] = process.argv.slice(2);
if (configPath === undefined || partitionPath === undefined) {
  process.stderr.write('usage: runner <runner.json> <partition path>\n');
  process.exit(2);
}
const runner = new Runner(configPath, partitionPath, (line) =>
  process.stdout.write(`${new Date().toISOString()} ${line}\n`),
);
runProgram(
  () => runner.start(),
  () => runner.stop(),
);
