/**
 * The commands `hox` loads together (one chunk of the bundle, scripts/bundle-cli.mjs): all but `hox db` and
 * `hox app`, whose helpers weigh more than the rest together. One chunk rather than one per command keeps
 * `hox --help`, which builds them all, from loading dozens of files (src/cli/program-loader.ts).
 */
export { alertsCommand } from './commands/alerts-command.js';
export { metricsCommand } from './commands/metrics-command.js';
export { auditCommand } from './commands/audit-command.js';
export { bangCommand } from './commands/bang-command.js';
export { completionCommand } from './commands/completion-command.js';
export { destroyCommand } from './commands/destroy-command.js';
export { listCommand } from './commands/list-command.js';
export { loginCommand } from './commands/login-command.js';
export { logsCommand } from './commands/logs-command.js';
export { masterCommand } from './commands/master-command.js';
export { nodeCommand } from './commands/node-command.js';
export { nodesCommand } from './commands/nodes-command.js';
export { pkiCommand } from './commands/pki-command.js';
export { registrationTokenCommand } from './commands/registration-token-command.js';
export { releasesCommand } from './commands/releases-command.js';
export { requestCommand } from './commands/request-command.js';
export { showCommand } from './commands/show-command.js';
export { supplyCommand } from './commands/supply-command.js';
export { upCommand } from './commands/up-command.js';
export { userCommand } from './commands/user-command.js';
