/**
 * `hox db`: hyper_db clusters (clustered PostgreSQL) without writing their
 * parameters by hand — create, status, switchover, pause/resume,
 * maintenance, forced promotion, databases, backup, point-in-time restore
 * into a new cluster. Every change reads the cluster's
 * current parameters back from the master, requests the root again with only
 * its own key changed, and waits until the cluster publishes the result.
 */
import { Command, Option } from 'commander';
import { HoxError } from '../../shared/errors.js';
import type { CommandEnv } from '../command-env.js';
import { confirmDestruction } from '../confirm-destruction.js';
import { actionContext, positiveInteger, routeOutput, timeoutOption } from '../action-context.js';
import { MAX_MEMBERS, SYNC_MODES, type SyncMode } from '../db/cluster-parameters.js';
import { lazyFunctions } from '../lazy-modules.js';
import { collect, parseAssignments } from '../parse-params.js';

// Each group of actions is imported by the first action that runs: `hox db status` loads neither the backup and
// restore code, nor psql's, nor the database requests (test/cli-startup.test.ts).
const clusterActions = () => import('../db/cluster-actions.js');
const backupActions = () => import('../db/backup-action.js');
const { createCluster, forcePromotion, setMaintenance, setPaused, showClusterStatus, switchover } = lazyFunctions(
  clusterActions,
  ['createCluster', 'forcePromotion', 'setMaintenance', 'setPaused', 'showClusterStatus', 'switchover'],
);
const { listBackups, restoreCluster, takeBackup } = lazyFunctions(backupActions, [
  'listBackups',
  'restoreCluster',
  'takeBackup',
]);
const { listClusters } = lazyFunctions(() => import('../db/cluster-list.js'), ['listClusters']);
const { runPsql } = lazyFunctions(() => import('../db/psql-action.js'), ['runPsql']);
const { requestDatabase } = lazyFunctions(() => import('../db/database-action.js'), ['requestDatabase']);

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
        await createCluster(actionContext(env, command), name, {
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
      await showClusterStatus(actionContext(env, command), name);
    });
}

function listSubcommand(env: CommandEnv): Command {
  return new Command('list')
    .description('Your clusters: health (and why not ok), members ready, primary, databases, last backup')
    .addHelpText('after', '\nExamples:\n  hox db list\n  hox db list --json')
    .action(async (_opts: unknown, command: Command) => {
      await listClusters(actionContext(env, command));
    });
}

function psqlSubcommand(env: CommandEnv): Command {
  return new Command('psql')
    .description("psql on one of your databases, as its role, the server verified against the cluster's CA")
    .argument('<cluster>', 'cluster name')
    .argument('[dbname]', 'database (may be left out when you have only one there)')
    .argument('[psql-args...]', 'after --: arguments for psql itself')
    .option('--read-only', 'through the read-only endpoint (the standbys)')
    .addHelpText(
      'after',
      `
The password and the CA go to psql in files of a private temporary directory (never on a command
line), removed when psql exits.

Examples:
  hox db psql crm-db crm
  hox db psql crm-db crm --read-only
  hox db psql crm-db crm -- -c 'SELECT count(*) FROM deals' -At`,
    )
    .action(
      async (
        cluster: string,
        dbname: string | undefined,
        args: string[],
        opts: { readOnly?: boolean },
        command: Command,
      ) => {
        await runPsql(actionContext(env, command), cluster, dbname, {
          readOnly: opts.readOnly === true,
          args,
          onStop: env.onStop,
          notice: env.printErr,
        });
      },
    );
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
      await switchover(actionContext(env, command), name, { to: opts.to ?? null, timeoutMs: ms });
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
      await setPaused(actionContext(env, command), name, paused, opts.timeout * 1000);
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
        await setMaintenance(actionContext(env, command), name, member, opts.on === true, opts.timeout * 1000);
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
        (await clusterActions()).assertAcceptsDataLoss(name, member, opts.acceptDataLoss === true);
        const ms = opts.timeout * 1000;
        await forcePromotion(actionContext(env, command), name, member, {
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
    .option('--destroy', 'drop the database and its role (asks to type DBNAME on a terminal; --yes otherwise)')
    .option('--yes', 'with --destroy: do not ask (needed when stdin is not a terminal)')
    .option('--reveal', 'show the password and the URLs with it')
    .addOption(timeoutOption(120))
    .addHelpText(
      'after',
      `
Examples:
  hox db database crm-db crm
  hox db database crm-db crm --reveal --json | jq -r .connection_parameters.database_url
  hox db database crm-db crm --rotate-password
  hox db database crm-db crm --destroy
  hox db database crm-db crm --destroy --yes     # from a script`,
    )
    .action(
      async (
        name: string,
        dbname: string,
        opts: { rotatePassword?: boolean; destroy?: boolean; yes?: boolean; reveal?: boolean; timeout: number },
        command: Command,
      ) => {
        const ms = opts.timeout * 1000;
        await requestDatabase(actionContext(env, command), name, dbname, {
          rotatePassword: opts.rotatePassword === true,
          destroy: opts.destroy === true,
          confirmDestroy: () =>
            confirmDestruction(env, {
              what: `database '${dbname}' of cluster '${name}'`,
              name: dbname,
              consequence: 'its data and its role are dropped',
              yes: opts.yes === true,
              command: `hox db database ${name} ${dbname} --destroy`,
            }),
          reveal: opts.reveal === true,
          timeoutMs: ms,
        });
      },
    );
}

function backupsSubcommand(env: CommandEnv): Command {
  return new Command('backups')
    .description("The cluster's base backups (id, taken at, member, size, verified) and archived WAL range")
    .argument('<name>', 'cluster name')
    .addHelpText(
      'after',
      `
Newest last; the router publishes its newest 50 base backups. A restore can reach any time after
a backup finished and before the last archived transaction. A destroyed cluster's backups stay on
its node for the node's retention period (hox node --retention-days, 7 by default): listed here
as retained, with until when.

Examples:
  hox db backups crm-db
  hox db backups crm-db --json | jq -r '.backups[-1].id'`,
    )
    .action(async (name: string, _opts: unknown, command: Command) => {
      await listBackups(actionContext(env, command), name);
    });
}

function backupSubcommand(env: CommandEnv): Command {
  return new Command('backup')
    .description('Take a verified base backup now (pg_basebackup from the primary, checked with pg_verifybackup)')
    .argument('<name>', 'cluster name')
    .addOption(timeoutOption(1800))
    .addHelpText(
      'after',
      `
Exit code 0 when the backup is done, 1 when it fails (the reason is printed). A timeout only
stops waiting: the backup carries on, and hox db status shows its result.

Examples:
  hox db backup crm-db
  hox db backup crm-db --json | jq .backups.last`,
    )
    .action(async (name: string, opts: { timeout: number }, command: Command) => {
      await takeBackup(actionContext(env, command), name, { timeoutMs: opts.timeout * 1000 });
    });
}

function restoreSubcommand(env: CommandEnv): Command {
  return new Command('restore')
    .description("Restore another cluster's backups into a NEW cluster: to a point in time, or the latest")
    .argument('<new>', 'name of the new cluster (must not exist)')
    .requiredOption('--from <source>', 'the hyper_db cluster whose base backups and archived WAL are restored')
    .option(
      '--time <iso>',
      'target time, ISO 8601 (e.g. 2026-11-27T10:00:00Z): replay stops just before it; latest (the default): the end of the archived WAL',
    )
    .option(
      '--backup <id>',
      'base backup to start from, e.g. 20261127T231500Z (default: the newest one finished before --time; the newest for latest)',
    )
    .addOption(
      new Option('--members <n>', `number of PostgreSQL members (1–${MAX_MEMBERS}; release default 3)`).argParser(
        positiveInteger,
      ),
    )
    .option('--wait', 'follow progress until the restored primary serves and every standby streams')
    .addOption(timeoutOption(1800))
    .addHelpText(
      'after',
      `
Without --time (or with --time latest) the whole archived WAL is replayed: the new cluster has
every transaction that reached the source's archive (WAL reaches it at most
wal_archive_timeout_s, 60 s by default, after a commit).

A target time must lie within the source's archived WAL: after the base backup the restore
starts from (--backup, or the newest one finished before it) and before the last archived
transaction. Replay stops just before the target time: transactions committed at or after --time
are not in the new cluster. A time without a zone is local time; it is sent in UTC. A time in
the future is refused. The new cluster keeps the source's databases and roles. With --wait, the
point it restored to (last replayed transaction, LSN) and the time the restore took are printed
once the cluster is ready (exit 1 on timeout). hox db backups SOURCE lists the backups and WAL.

Examples:
  hox db restore crm-db-copy --from crm-db --wait
  hox db restore crm-db-copy --from crm-db --time 2026-11-27T10:00:00Z --wait
  hox db restore crm-db-copy --from crm-db --time 2026-11-27T10:00:00Z --backup 20261127T000000Z --members 1`,
    )
    .action(
      async (
        name: string,
        opts: { from: string; time?: string; backup?: string; members?: number; wait?: boolean; timeout: number },
        command: Command,
      ) => {
        const request = {
          from: opts.from,
          time: opts.time ?? null,
          backup: opts.backup ?? null,
          ...(opts.members === undefined ? {} : { members: opts.members }),
          wait: opts.wait === true,
          timeoutMs: opts.timeout * 1000,
        };
        // Refused before anything is read or requested.
        (await backupActions()).checkRestoreInput(name, request, Date.now());
        await restoreCluster(actionContext(env, command), name, request);
      },
    );
}

export function dbCommand(env: CommandEnv): Command {
  const db = new Command('db')
    .description('hyper_db clusters: clustered PostgreSQL with failover, switchover, databases, backups and restore')
    .addHelpText(
      'after',
      `
Examples:
  hox supply hyper_db                       # once: install the release on the nodes
  hox db create crm-db --members 3 --wait
  hox db list
  hox db status crm-db
  hox db database crm-db crm
  hox db psql crm-db crm
  hox db switchover crm-db --to member-2
  hox db pause crm-db; hox db resume crm-db
  hox db maintenance crm-db member-3 --on
  hox db backup crm-db
  hox db backups crm-db
  hox db restore crm-db-copy --from crm-db --time 2026-11-27T10:00:00Z --wait
  hox db restore crm-db-copy --from crm-db --wait      # to the latest point`,
    );
  for (const sub of [
    createSubcommand(env),
    listSubcommand(env),
    statusSubcommand(env),
    switchoverSubcommand(env),
    pauseSubcommand(env, true),
    pauseSubcommand(env, false),
    maintenanceSubcommand(env),
    promoteSubcommand(env),
    databaseSubcommand(env),
    psqlSubcommand(env),
    backupsSubcommand(env),
    backupSubcommand(env),
    restoreSubcommand(env),
  ])
    db.addCommand(sub);
  return routeOutput(env, db);
}
