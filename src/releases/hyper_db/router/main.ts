/** Entry of the router service: `node router/main.js <router.json> <partition path>`. */
import { Router } from './router.js';

const [configPath, partitionPath] = process.argv.slice(2);
if (configPath === undefined || partitionPath === undefined) {
  process.stderr.write('usage: router <router.json> <partition path>\n');
  process.exit(2);
}
const router = new Router(configPath, partitionPath, (line) =>
  process.stdout.write(`${new Date().toISOString()} ${line}\n`),
);
const stop = (): void => {
  router.stop().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
router.start().catch((error: unknown) => {
  process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
