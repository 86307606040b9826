/**
 * `hox db`: hyper_db clusters (clustered PostgreSQL) without writing their
 * parameters by hand — create, status, switchover, pause/resume,
 * maintenance, forced promotion, databases. Every change reads the cluster's
 * current parameters back from the master, requests the root again with only
 * its own key changed, and waits until the cluster publishes the result.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { HoxError } from '../../shared/errors.js';
import type { CommandEnv } from '../command-env.js';
import { connect, globals } from '../connect.js';
import {
  assertAcceptsDataLoss,
  createCluster,
  forcePromotion,
  setMaintenance,
  setPaused,
  showClusterStatus,
  switchover,
  type DbContext,
} from '../db/cluster-actions.js';
import { MAX_MEMBERS, SYNC_MODES, type SyncMode } from '../db/cluster-parameters.js';
import { requestDatabase } from '../db/database-action.js';
import { collect, parseAssignments } from '../parse-params.js';

function positiveInteger(value: string): number {
  if (!/^\d+$/.test(value) || Number.parseInt(value, 10) <= 0)
    throw new InvalidArgumentError(`'${value}' is not a positive integer.`);
  return Number.parseInt(value, 10);
}

function timeoutOption(defaultSeconds: number): Option {
  return new Option('--timeout <seconds>', 'give up waiting after this long')
    .argParser(positiveInteger)
    .default(defaultSeconds);
}

function contextFor(env: CommandEnv, command: Command): DbContext {
  const json = globals(command).json === true;
  return {
    client: connect(env, command),
    json,
    print: env.print,
    progress: (line) => (json ? env.printErr(line) : env.print(`  ${line}`)),
  };
}

function createSubcommand(env: CommandEnv): Command {
  return new Command('create')
    .description('Create a cluster (or update it in place): release hyper_db, software type cluster')
    .argument('<name>', 'cluster name (the instance tree title)')
    .addOption(
      new Option('--members <n>', `number of PostgreSQL members (1–${MAX_MEMBERS}; release default 3)`).argParser(
        positiveInteger,
      ),
    )
    .addOption(new Option('--sync-mode <mode>', 'synchronous replication (release default quorum)').choices(SYNC_MODES))
    .option('--param <key=value>', 'another cluster parameter (KEY=VALUE, KEY:=JSON); repeatable', collect, [])
    .option('--wait', 'follow progress until a primary serves and every standby streams')
    .addOption(timeoutOption(600))
    .addHelpText(
      'after',
      `
Examples:
  hox db create crm-db --wait
  hox db create crm-db --members 5 --sync-mode strict --wait --timeout 900
  hox db create crm-db --param max_lag_bytes:=1048576 --param settings:='{"work_mem":"16MB"}'`,
    )
    .action(
      async (
        name: string,
        opts: { members?: number; syncMode?: SyncMode; param: string[]; wait?: boolean; timeout: number },
        command: Command,
      ) => {
        const ms = opts.timeout * 1000;
        const extra = parseAssignments('--param', opts.param);
        await createCluster(contextFor(env, command), name, {
          ...(opts.members === undefined ? {} : { members: opts.members }),
          ...(opts.syncMode === undefined ? {} : { syncMode: opts.syncMode }),
          extra,
          wait: opts.wait === true,
          timeoutMs: ms,
        });
      },
    );
}

function statusSubcommand(env: CommandEnv): Command {
  return new Command('status')
    .description('Members with role, lag and sync state; primary, pause, last failover and switchover, recent events')
    .argument('<name>', 'cluster name')
    .addHelpText(
      'after',
      '\nExamples:\n  hox db status crm-db\n  hox db status crm-db --json | jq .connection_parameters.primary',
    )
    .action(async (name: string, _opts: unknown, command: Command) => {
      await showClusterStatus(contextFor(env, command), name);
    });
}

function switchoverSubcommand(env: CommandEnv): Command {
  return new Command('switchover')
    .description('Planned switchover: the primary hands over to a standby without losing a commit')
    .argument('<name>', 'cluster name')
    .option('--to <member>', 'target member, e.g. member-2 (default: the most advanced eligible standby)')
    .addOption(timeoutOption(120))
    .addHelpText(
      'after',
      `
Exit code 0 when the switchover is done, 1 when it is refused or fails (the reason is printed).

Examples:
  hox db switchover crm-db
  hox db switchover crm-db --to member-3 --json`,
    )
    .action(async (name: string, opts: { to?: string; timeout: number }, command: Command) => {
      const ms = opts.timeout * 1000;
      await switchover(contextFor(env, command), name, { to: opts.to ?? null, timeoutMs: ms });
    });
}

function pauseSubcommand(env: CommandEnv, paused: boolean): Command {
  const verb = paused ? 'pause' : 'resume';
  return new Command(verb)
    .description(
      paused
        ? 'Pause automatic failover (planned switchovers still work)'
        : 'Resume automatic failover after hox db pause',
    )
    .argument('<name>', 'cluster name')
    .addOption(timeoutOption(120))
    .addHelpText('after', `\nExample:\n  hox db ${verb} crm-db`)
    .action(async (name: string, opts: { timeout: number }, command: Command) => {
      await setPaused(contextFor(env, command), name, paused, opts.timeout * 1000);
    });
}

function maintenanceSubcommand(env: CommandEnv): Command {
  return new Command('maintenance')
    .description('Put a member in maintenance (never promoted, out of the synchronous quorum) or take it out')
    .argument('<name>', 'cluster name')
    .argument('<member>', 'member name: member-1 … member-N')
    .option('--on', 'put the member in maintenance')
    .option('--off', 'take the member out of maintenance')
    .addOption(timeoutOption(120))
    .addHelpText(
      'after',
      '\nExamples:\n  hox db maintenance crm-db member-3 --on\n  hox db maintenance crm-db member-3 --off',
    )
    .action(
      async (
        name: string,
        member: string,
        opts: { on?: boolean; off?: boolean; timeout: number },
        command: Command,
      ) => {
        if ((opts.on === true) === (opts.off === true))
          throw new HoxError('HOX_BAD_REQUEST', 'pass exactly one of --on, --off', { field: '--on' });
        await setMaintenance(contextFor(env, command), name, member, opts.on === true, opts.timeout * 1000);
      },
    );
}

function promoteSubcommand(env: CommandEnv): Command {
  return new Command('promote')
    .description('Promote a member without a majority (when most members are lost): commits may be lost')
    .argument('<name>', 'cluster name')
    .argument('<member>', 'member to promote: member-1 … member-N')
    .option('--accept-data-loss', 'required: you accept that commits not on this member are lost')
    .addOption(timeoutOption(60))
    .addHelpText(
      'after',
      `
Only for a cluster that lost its majority for good: the keeper ignores the request while a
primary's lease is valid. The request is recorded with who made it.

Example:
  hox db promote crm-db member-2 --accept-data-loss`,
    )
    .action(
      async (name: string, member: string, opts: { acceptDataLoss?: boolean; timeout: number }, command: Command) => {
        // Refused before anything is read or requested.
        assertAcceptsDataLoss(name, member, opts.acceptDataLoss === true);
        const ms = opts.timeout * 1000;
        await forcePromotion(contextFor(env, command), name, member, {
          acceptDataLoss: opts.acceptDataLoss === true,
          timeoutMs: ms,
        });
      },
    );
}

function databaseSubcommand(env: CommandEnv): Command {
  return new Command('database')
    .description(
      'A database with its own role on a cluster (a shared instance titled NAME.DBNAME); prints how to connect',
    )
    .argument('<name>', 'cluster name')
    .argument('<dbname>', 'database (and role) name: lowercase letters, digits, _')
    .option('--rotate-password', 'give the role a new password')
    .option('--destroy', 'drop the database and its role')
    .option('--reveal', 'show the password and the URLs with it')
    .addOption(timeoutOption(120))
    .addHelpText(
      'after',
      `
Examples:
  hox db database crm-db crm
  hox db database crm-db crm --reveal --json | jq -r .connection_parameters.database_url
  hox db database crm-db crm --rotate-password
  hox db database crm-db crm --destroy`,
    )
    .action(
      async (
        name: string,
        dbname: string,
        opts: { rotatePassword?: boolean; destroy?: boolean; reveal?: boolean; timeout: number },
        command: Command,
      ) => {
        const ms = opts.timeout * 1000;
        await requestDatabase(contextFor(env, command), name, dbname, {
          rotatePassword: opts.rotatePassword === true,
          destroy: opts.destroy === true,
          reveal: opts.reveal === true,
          timeoutMs: ms,
        });
      },
    );
}

export function dbCommand(env: CommandEnv): Command {
  const db = new Command('db')
    .description('hyper_db clusters: clustered PostgreSQL with failover, switchover and databases')
    .addHelpText(
      'after',
      `
Examples:
  hox supply hyper_db                       # once: install the release on the nodes
  hox db create crm-db --members 3 --wait
  hox db status crm-db
  hox db database crm-db crm
  hox db switchover crm-db --to member-2
  hox db pause crm-db; hox db resume crm-db
  hox db maintenance crm-db member-3 --on`,
    );
  for (const sub of [
    createSubcommand(env),
    statusSubcommand(env),
    switchoverSubcommand(env),
    pauseSubcommand(env, true),
    pauseSubcommand(env, false),
    maintenanceSubcommand(env),
    promoteSubcommand(env),
    databaseSubcommand(env),
  ])
    db.addCommand(
      sub
        .exitOverride()
        .showHelpAfterError('(run with --help for usage)')
        .configureOutput({ writeOut: (s) => env.print(s.trimEnd()), writeErr: (s) => env.printErr(s.trimEnd()) }),
    );
  return db
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ writeOut: (s) => env.print(s.trimEnd()), writeErr: (s) => env.printErr(s.trimEnd()) });
}
