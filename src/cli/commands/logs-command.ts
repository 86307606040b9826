/**
 * `hox logs TITLE`: the service logs of an instance tree's instances. Logs
 * stay on the node that runs them; this reads them when that node's data dir
 * is on this machine (`hox up` records it; otherwise pass --node-data-dir).
 */
import { Command } from 'commander';
import { existsSync, readdirSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { HoxError } from '../../shared/errors.js';
import { readConfigFile } from '../cli-config.js';
import type { CommandEnv } from '../command-env.js';
import { connect, globals } from '../connect.js';

interface LogFile {
  instance: string;
  service: string;
  path: string;
}

async function readFrom(path: string, offset: number): Promise<{ text: string; size: number }> {
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    if (size <= offset) return { text: '', size };
    const buffer = Buffer.alloc(Math.min(size - offset, 4 * 1024 * 1024));
    await handle.read(buffer, 0, buffer.length, size - buffer.length);
    return { text: buffer.toString('utf8'), size };
  } finally {
    await handle.close();
  }
}

export function logsCommand(env: CommandEnv): Command {
  return new Command('logs')
    .description("Print the service logs of an instance tree's instances")
    .argument('<title>', 'instance tree title')
    .option('--service <name>', 'only this service')
    .option('--lines <n>', 'last lines per log', (v) => Number.parseInt(v, 10), 50)
    .option('--follow', 'keep printing new lines until Ctrl-C')
    .option('--node-data-dir <dir>', 'data dir of the node agent running it (default: the one hox up recorded)')
    .addHelpText('after', '\nExamples:\n  hox logs hello\n  hox logs hello --service http --follow')
    .action(
      async (
        title: string,
        opts: { service?: string; lines: number; follow?: boolean; nodeDataDir?: string },
        command: Command,
      ) => {
        const client = connect(env, command);
        const [tree] = (await client.call('listTreeStatus', { title })).result_list;
        if (tree === undefined) throw new HoxError('HOX_INSTANCE_TREE_NOT_FOUND', `instance tree '${title}' not found`);
        const config = readConfigFile(env.configPath);
        const dataDir = opts.nodeDataDir ?? config.localNodeDataDir;
        const files: LogFile[] = [];
        for (const i of tree.instance_list) {
          if (i.shared || i.compute_partition_id === null) continue;
          if (dataDir === undefined || (opts.nodeDataDir === undefined && i.computer_guid !== config.localNodeId))
            throw new HoxError(
              'HOX_BAD_REQUEST',
              `instance '${i.title}' runs on node '${i.computer_guid ?? '?'}': its logs are on that machine (pass --node-data-dir there)`,
              { field: '--node-data-dir' },
            );
          const dir = join(dataDir, 'logs', i.compute_partition_id);
          if (!existsSync(dir)) continue;
          for (const name of readdirSync(dir)
            .filter((f) => f.endsWith('.log'))
            .sort()) {
            const service = name.slice(0, -4);
            if (opts.service === undefined || opts.service === service)
              files.push({ instance: i.title, service, path: join(dir, name) });
          }
        }
        if (files.length === 0)
          throw new HoxError(
            'HOX_NOT_FOUND',
            `no log${opts.service ? ` for service '${opts.service}'` : ''} yet in '${title}'`,
          );
        const json = globals(command).json === true;
        const offsets = new Map<string, number>();
        for (const f of files) {
          const { text, size } = await readFrom(f.path, 0);
          offsets.set(f.path, size);
          const lines = text
            .split('\n')
            .filter((l) => l !== '')
            .slice(-opts.lines);
          for (const line of lines)
            env.print(
              json
                ? JSON.stringify({ instance: f.instance, service: f.service, line })
                : `${f.instance}/${f.service} | ${line}`,
            );
        }
        if (opts.follow !== true) return;
        let stop = false;
        void env.stopped.then(() => (stop = true));
        for (let round = 0; !stop && round < 10_000_000; round += 1) {
          await sleep(500);
          for (const f of files) {
            const { text, size } = await readFrom(f.path, offsets.get(f.path) ?? 0);
            offsets.set(f.path, size);
            for (const line of text.split('\n').filter((l) => l !== ''))
              env.print(
                json
                  ? JSON.stringify({ instance: f.instance, service: f.service, line })
                  : `${f.instance}/${f.service} | ${line}`,
              );
          }
        }
      },
    );
}
