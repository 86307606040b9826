/** Entry of the router service: `node router/main.js <router.json> <partition path>`. */
import { runProgram } from '../../../release-kit/run-program.js';
import { Router } from './router.js';

const [configPath, partitionPath] = process.argv.slice(2);
if (configPath === undefined || partitionPath === undefined) {
  process.stderr.write('usage: router <router.json> <partition path>\n');
  process.exit(2);
}
const router = new Router(configPath, partitionPath, (line) =>
  process.stdout.write(`${new Date().toISOString()} ${line}\n`),
);
runProgram(
  () => router.start(),
  () => router.stop(),
);
