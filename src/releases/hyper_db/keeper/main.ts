/**
 * Entry of the keeper service: `node keeper/main.js <keeper.json>`.
 * SIGTERM/SIGINT stop it cleanly (a primary hands its lease back first).
 */
import { Keeper } from './keeper.js';

const configPath = process.argv[2];
if (configPath === undefined) {
  process.stderr.write('usage: keeper <keeper.json>\n');
  process.exit(2);
}
const keeper = new Keeper(configPath, (line) => process.stdout.write(`${new Date().toISOString()} ${line}\n`));
let stopping = false;
const stop = (): void => {
  if (stopping) return;
  stopping = true;
  keeper.stop().then(
    () => process.exit(0),
    (error: unknown) => {
      process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
      process.exit(1);
    },
  );
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
keeper.start().catch((error: unknown) => {
  process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
