/**
 * Entry of the keeper service: `node keeper/main.js <keeper.json>`.
 * SIGTERM/SIGINT stop it cleanly (a primary hands its lease back first).
 */
import { runProgram } from '../../../release-kit/run-program.js';
import { Keeper } from './keeper.js';

const configPath = process.argv[2];
if (configPath === undefined) {
  process.stderr.write('usage: keeper <keeper.json>\n');
  process.exit(2);
}
const keeper = new Keeper(configPath, (line) => process.stdout.write(`${new Date().toISOString()} ${line}\n`));
runProgram(
  () => keeper.start(),
  () => keeper.stop(),
);
