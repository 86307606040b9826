/** Runs an argv to completion (no shell), bounded in time; rejects with the exit status and the output's tail. */
import { spawn } from 'node:child_process';
import { isolatedCommand, type PartitionIsolation } from './isolate/partition-launch.js';

/** The whole environment of the agent's own short-lived helpers run as a partition user: nothing of the agent's. */
export const HELPER_ENV: Readonly<Record<string, string>> = Object.freeze({ PATH: '/usr/bin:/bin', LANG: 'C.UTF-8' });

export function runCommand(
  argv: string[],
  options: {
    cwd: string;
    uid?: number | undefined;
    gid?: number | undefined;
    env?: Readonly<Record<string, string>>;
    timeoutMs: number;
    /** Written to the command's standard input. */
    input?: string | Buffer;
    /** How errors name the command. @default the argv as JSON */
    label?: string;
    /**
     * Run inside the partition's isolation (its cgroups, private /tmp and /dev/shm, as
     * `isolation.uid`); `uid`/`gid` are then not used, and `env` is the command's whole environment.
     */
    isolation?: PartitionIsolation | undefined;
  },
): Promise<string> {
  const [command, ...args] = argv;
  if (command === undefined) return Promise.reject(new Error('empty command'));
  const stdin = options.input === undefined ? 'ignore' : 'pipe';
  const isolated =
    options.isolation === undefined
      ? undefined
      : isolatedCommand(options.isolation, { file: command, args, cwd: options.cwd, env: options.env ?? HELPER_ENV });
  return new Promise((resolve, reject) => {
    const child =
      isolated === undefined
        ? spawn(command, args, {
            cwd: options.cwd,
            stdio: [stdin, 'pipe', 'pipe'],
            ...(options.uid === undefined ? {} : { uid: options.uid }),
            ...(options.gid === undefined ? {} : { gid: options.gid }),
            ...(options.env === undefined ? {} : { env: options.env }),
          })
        : spawn(isolated.file, isolated.args, { cwd: '/', stdio: [stdin, 'pipe', 'pipe'], env: isolated.env });
    let output = '';
    const keep = (chunk: Buffer): void => {
      output = (output + chunk.toString()).slice(-4000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(output);
      else
        reject(
          new Error(
            `${options.label ?? JSON.stringify(argv)} failed (exit ${code ?? signal}): ${output.trim().split('\n').slice(-3).join(' | ')}`,
          ),
        );
    });
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}
