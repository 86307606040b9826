/**
 * `hox app`: applications on hyper_edge, Heroku-style — deploy a directory,
 * git repository or archive, follow it until it serves (or see why it was
 * rolled back), config vars, rollback, scale, status, destroy.
 */
import { Command, Option } from 'commander';
import { HoxError } from '../../shared/errors.js';
import type { CommandEnv } from '../command-env.js';
import { confirmDestruction } from '../confirm-destruction.js';
import { actionContext, positiveInteger, routeOutput, timeoutOption } from '../action-context.js';
import { lazyFunctions } from '../lazy-modules.js';
import { appLogsSubcommand } from './logs-command.js';

// app-actions (the manifest reader, smol-toml, the source packer) is imported by the first action that runs.
const { changeConfig, createApp, deployApp, destroyApp, listApps, listConfig, rollbackApp, scaleApp, showApp } =
  lazyFunctions(
    () => import('../app/app-actions.js'),
    [
      'changeConfig',
      'createApp',
      'deployApp',
      'destroyApp',
      'listApps',
      'listConfig',
      'rollbackApp',
      'scaleApp',
      'showApp',
    ],
  );

const { psApp, restartApp, runApp } = lazyFunctions(
  () => import('../app/app-ops.js'),
  ['psApp', 'restartApp', 'runApp'],
);

const noWaitOption = () => new Option('--no-wait', 'return once requested, without following the rollout');

/** `--env KEY=VALUE`, repeatable. */
const envOption = (what: string) =>
  new Option('--env <KEY=VALUE>', what).argParser((item: string, previous: string[] | undefined) => [
    ...(previous ?? []),
    item,
  ]);

function deploySubcommand(env: CommandEnv): Command {
  return new Command('deploy')
    .description('Deploy an app from a directory, a git repository or a .tar.gz archive; follow it until it serves')
    .argument('<name>', 'app name (the instance tree title)')
    .argument('<source>', 'directory, git URL (or repository path with --ref), or .tar.gz archive')
    .option('--ref <ref>', 'git branch, tag or commit to deploy')
    .option('--db-cluster <name>', "hyper_db cluster for the app's postgres addon (default: the manifest's, else 'db')")
    .addOption(envOption('set a config var with this deploy (repeatable); it stays set, as with config set'))
    .addOption(
      new Option('--scale <n>', 'web replicas (default: the manifest’s [scale] web)').argParser(positiveInteger),
    )
    .addOption(noWaitOption())
    .addOption(timeoutOption(900))
    .addHelpText(
      'after',
      `
The app describes itself with a Procfile and/or hox.toml (or hop3.toml): see docs/app-manifest.md.
A new release starts beside the serving one and takes the traffic only once its health check
passes; otherwise it is stopped, the previous release keeps serving, and the reason is printed.
The app's processes see its hox.toml [env], then config vars (--env, config set) over it, and
APP_URL, its public URL (unless [env] or a config var sets it).

Examples:
  hox app deploy crm examples/crm
  hox app deploy cms ./directus --env DB_CLIENT=pg --env ADMIN_EMAIL=me@example.org
  hox app deploy crm https://git.example.org/crm.git --ref v1.2
  hox app deploy site ./site.tar.gz --json`,
    )
    .action(
      async (
        name: string,
        source: string,
        opts: { ref?: string; dbCluster?: string; env?: string[]; scale?: number; wait: boolean; timeout: number },
        command: Command,
      ) => {
        await deployApp(actionContext(env, command), name, source, {
          ...(opts.ref === undefined ? {} : { ref: opts.ref }),
          ...(opts.env === undefined ? {} : { env: parseVars(opts.env) }),
          ...(opts.dbCluster === undefined ? {} : { dbCluster: opts.dbCluster }),
          ...(opts.scale === undefined ? {} : { scale: opts.scale }),
          wait: opts.wait,
          timeoutMs: opts.timeout * 1000,
        });
      },
    );
}

function createSubcommand(env: CommandEnv): Command {
  return new Command('create')
    .description('Create an app before its first deploy: its public URL and config vars exist at once')
    .argument('<name>', 'app name (the instance tree title)')
    .addOption(envOption('a config var (repeatable): the first deploy takes it'))
    .addOption(new Option('--no-wait', 'return once requested, without waiting for the URL'))
    .addOption(timeoutOption(120))
    .addHelpText(
      'after',
      `
The app gets its public endpoint now (printed, and APP_URL in its environment); nothing runs until
hox app deploy. Config vars set now (or with hox app config set) are taken by the first deploy.

Examples:
  hox app create cms --env DB_CLIENT=pg
  hox app config set cms PUBLIC_URL=https://cms.example.org
  hox app deploy cms ./directus`,
    )
    .action(async (name: string, opts: { env?: string[]; wait: boolean; timeout: number }, command: Command) => {
      await createApp(actionContext(env, command), name, {
        env: parseVars(opts.env ?? []),
        wait: opts.wait,
        timeoutMs: opts.timeout * 1000,
      });
    });
}

function statusSubcommand(env: CommandEnv): Command {
  return new Command('status')
    .description(
      "An app's health (ok only when its URL routes to healthy replicas of its current release; else what is wrong), url, release, replicas and releases (failed ones too)",
    )
    .argument('<name>', 'app name')
    .addHelpText('after', '\nExamples:\n  hox app status crm\n  hox app status crm --json | jq .url')
    .action(async (name: string, _opts: unknown, command: Command) => {
      await showApp(actionContext(env, command), name);
    });
}

function listSubcommand(env: CommandEnv): Command {
  return new Command('list')
    .description('Apps with their release, health and url')
    .action(async (_opts: unknown, command: Command) => {
      await listApps(actionContext(env, command));
    });
}

function rollbackSubcommand(env: CommandEnv): Command {
  return new Command('rollback')
    .description("Serve an earlier release's code and config again (as a new release)")
    .argument('<name>', 'app name')
    .addOption(
      new Option('--to <release>', 'release number, e.g. 3 (default: the previous one)').argParser(positiveInteger),
    )
    .addOption(noWaitOption())
    .addOption(timeoutOption(600))
    .addHelpText('after', '\nExamples:\n  hox app rollback crm\n  hox app rollback crm --to 3')
    .action(async (name: string, opts: { to?: number; wait: boolean; timeout: number }, command: Command) => {
      await rollbackApp(actionContext(env, command), name, opts.to, {
        wait: opts.wait,
        timeoutMs: opts.timeout * 1000,
      });
    });
}

function parseVars(items: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of items) {
    const match = /^([^=]+)=(.*)$/s.exec(item);
    if (match === null) throw new HoxError('HOX_BAD_REQUEST', `'${item}' is not KEY=VALUE`, { field: 'assignment' });
    out[match[1]!] = match[2]!;
  }
  return out;
}

function configSubcommand(env: CommandEnv): Command {
  const config = new Command('config').description(
    'Config vars: the environment of every process (changing them redeploys)',
  );
  config.addCommand(
    new Command('set')
      .description('Set config vars (a new release, rolled out with no downtime)')
      .argument('<name>', 'app name')
      .argument('<assignments...>', 'KEY=VALUE pairs')
      .addOption(noWaitOption())
      .addOption(timeoutOption(600))
      .addHelpText('after', '\nExamples:\n  hox app config set crm SMTP_HOST=mail.example.org FEATURE_X=1')
      .action(
        async (name: string, assignments: string[], opts: { wait: boolean; timeout: number }, command: Command) => {
          await changeConfig(
            actionContext(env, command),
            name,
            { set: parseVars(assignments) },
            {
              wait: opts.wait,
              timeoutMs: opts.timeout * 1000,
            },
          );
        },
      ),
  );
  config.addCommand(
    new Command('unset')
      .description('Remove config vars (a new release)')
      .argument('<name>', 'app name')
      .argument('<keys...>', 'variable names')
      .addOption(noWaitOption())
      .addOption(timeoutOption(600))
      .action(async (name: string, keys: string[], opts: { wait: boolean; timeout: number }, command: Command) => {
        await changeConfig(
          actionContext(env, command),
          name,
          { unset: keys },
          {
            wait: opts.wait,
            timeoutMs: opts.timeout * 1000,
          },
        );
      }),
  );
  config.addCommand(
    new Command('list')
      .description(
        'Config vars and the secrets the platform generated ([secrets] generate), values masked unless --reveal',
      )
      .argument('<name>', 'app name')
      .option('--reveal', "show the values (the app's owner only: they are not logged anywhere)")
      .action(async (name: string, opts: { reveal?: boolean }, command: Command) => {
        await listConfig(actionContext(env, command), name, opts.reveal === true);
      }),
  );
  return config;
}

function scaleSubcommand(env: CommandEnv): Command {
  return new Command('scale')
    .description(
      'Run N web replicas (spread over compute nodes when there are several); scaling down returns once the replicas removed are stopped and their partitions freed',
    )
    .argument('<name>', 'app name')
    .argument('<replicas>', 'number of replicas (1–20)', positiveInteger)
    .addOption(
      new Option(
        '--memory-mib <mib>',
        "each replica's memory limit in MiB, 64–65536 (its web, workers and one-off runs together); default: the node's",
      ).argParser(positiveInteger),
    )
    .addOption(noWaitOption())
    .addOption(timeoutOption(600))
    .action(
      async (
        name: string,
        replicas: number,
        opts: { wait: boolean; timeout: number; memoryMib?: number },
        command: Command,
      ) => {
        if (replicas > 20) throw new HoxError('HOX_BAD_REQUEST', 'at most 20 replicas', { field: 'replicas' });
        if (opts.memoryMib !== undefined && (opts.memoryMib < 64 || opts.memoryMib > 65536))
          throw new HoxError('HOX_BAD_REQUEST', '--memory-mib: 64 to 65536', { field: '--memory-mib' });
        await scaleApp(actionContext(env, command), name, replicas, {
          wait: opts.wait,
          timeoutMs: opts.timeout * 1000,
          ...(opts.memoryMib === undefined ? {} : { memoryMib: opts.memoryMib }),
        });
      },
    );
}

function destroySubcommand(env: CommandEnv): Command {
  return new Command('destroy')
    .description('Destroy an app, its replicas and its database addon (the database is dropped)')
    .argument('<name>', 'app name')
    .option('--yes', 'destroy without asking (needed when stdin is not a terminal)')
    .addOption(noWaitOption())
    .addOption(timeoutOption(300))
    .addHelpText('after', '\nOn a terminal, hox asks you to type the app name; without one, --yes is required.')
    .action(async (name: string, opts: { wait: boolean; timeout: number; yes?: boolean }, command: Command) => {
      await destroyApp(actionContext(env, command), name, {
        wait: opts.wait,
        timeoutMs: opts.timeout * 1000,
        confirm: (consequence) =>
          confirmDestruction(env, {
            what: `app '${name}'`,
            name,
            consequence,
            yes: opts.yes === true,
            command: `hox app destroy ${name}`,
          }),
      });
    });
}

function psSubcommand(env: CommandEnv): Command {
  return new Command('ps')
    .description(
      "An app's processes on each replica: type, state (running, crashed, restarting), pid, uptime, restarts, release, node/partition",
    )
    .argument('<name>', 'app name')
    .addHelpText('after', '\nExamples:\n  hox app ps crm\n  hox app ps crm --json | jq ".processes[].pid"')
    .action(async (name: string, _opts: unknown, command: Command) => {
      await psApp(actionContext(env, command), name);
    });
}

function restartSubcommand(env: CommandEnv): Command {
  return new Command('restart')
    .description(
      "Restart an app's processes, one replica at a time: a new web takes the traffic once healthy, then the old one is drained and stopped",
    )
    .argument('<name>', 'app name')
    .option('--process <type>', 'only this process type (web, or a worker type)')
    .addOption(new Option('--replica <n>', 'only this replica (e.g. 2 for replica-2)').argParser(positiveInteger))
    .addOption(noWaitOption())
    .addOption(timeoutOption(600))
    .addHelpText(
      'after',
      '\nThe release and its config stay the same (no new release number).\n\nExamples:\n  hox app restart crm\n  hox app restart crm --process web --replica 2\n  hox app restart crm --process ticker --no-wait',
    )
    .action(
      async (
        name: string,
        opts: { process?: string; replica?: number; wait: boolean; timeout: number },
        command: Command,
      ) => {
        if (opts.process !== undefined && !/^[A-Za-z0-9_-]{1,63}$/.test(opts.process))
          throw new HoxError('HOX_BAD_REQUEST', `'${opts.process}' is not a process type (letters, digits, _ and -)`, {
            field: '--process',
          });
        await restartApp(actionContext(env, command), name, {
          ...(opts.process === undefined ? {} : { process: opts.process }),
          ...(opts.replica === undefined ? {} : { replica: opts.replica }),
          wait: opts.wait,
          timeoutMs: opts.timeout * 1000,
        });
      },
    );
}

function runSubcommand(env: CommandEnv): Command {
  return new Command('run')
    .description(
      "Run a one-off command with the app's environment and current release, on one of its replicas; exit with its exit code",
    )
    .argument('<name>', 'app name')
    .argument('<command...>', 'the command and its arguments, after -- (run as is, without a shell)')
    .addOption(
      new Option('--replica <n>', 'run it on this replica (default: the first serving)').argParser(positiveInteger),
    )
    .addOption(
      new Option('--timeout <seconds>', 'stop the command after this long (SIGTERM, then SIGKILL)')
        .argParser(positiveInteger)
        .default(600),
    )
    .addHelpText(
      'after',
      `
The command runs in the release's directory on a replica (whatever node runs it), as the app's
processes do: config vars, generated secrets, addon variables (DATABASE_URL…) and APP_URL in its
environment. No shell: use sh -c '…' for one. Its standard output and error come back through the
master, line by line, on standard output; hox exits with its exit code (124 when --timeout stopped it).
Ctrl-C stops it. Not interactive: no terminal, no standard input.

Examples:
  hox app run crm -- node scripts/migrate.js
  hox app run crm -- sh -c 'echo "$GREETING"'
  hox app run crm --timeout 60 -- npm run report`,
    )
    .action(async (name: string, argv: string[], opts: { replica?: number; timeout: number }, command: Command) => {
      await runApp(actionContext(env, command), name, argv, {
        timeoutS: opts.timeout,
        ...(opts.replica === undefined ? {} : { replica: opts.replica }),
        output: env.print,
        note: env.printErr,
        onStop: env.onStop,
        stopped: env.stopped,
      });
    });
}

export function appCommand(env: CommandEnv): Command {
  const app = new Command('app')
    .description('Applications on hyper_edge: create, deploy, config, rollback, scale, status, ps, restart, run')
    .addHelpText(
      'after',
      `
Examples:
  hox db create db --wait                    # once, for apps with a postgres addon
  hox app deploy crm examples/crm
  hox app create cms --env DB_CLIENT=pg      # URL and config before the first deploy
  hox app status crm
  hox app config set crm GREETING=hello
  hox app rollback crm
  hox app scale crm 2
  hox app scale crm 2 --memory-mib 512
  hox app ps crm                             # every process of every replica
  hox app restart crm                        # one replica at a time, no downtime
  hox app run crm -- node scripts/report.js  # a one-off command with the app's environment
  hox app logs crm --process web --follow    # the replicas' output, merged by time`,
    );
  for (const sub of [
    createSubcommand(env),
    deploySubcommand(env),
    statusSubcommand(env),
    listSubcommand(env),
    rollbackSubcommand(env),
    configSubcommand(env),
    scaleSubcommand(env),
    destroySubcommand(env),
    appLogsSubcommand(env),
    psSubcommand(env),
    restartSubcommand(env),
    runSubcommand(env),
  ])
    app.addCommand(sub);
  return routeOutput(env, app);
}
