/** Runs an argv to completion (no shell), bounded in time; rejects with the exit status and the output's tail. */
import { spawn } from 'node:child_process';

export function runCommand(
  argv: string[],
  options: {
    cwd: string;
    uid?: number | undefined;
    gid?: number | undefined;
    env?: Record<string, string>;
    timeoutMs: number;
  },
): Promise<string> {
  const [command, ...args] = argv;
  if (command === undefined) return Promise.reject(new Error('empty command'));
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(options.uid === undefined ? {} : { uid: options.uid }),
      ...(options.gid === undefined ? {} : { gid: options.gid }),
      ...(options.env === undefined ? {} : { env: options.env }),
    });
    let output = '';
    const keep = (chunk: Buffer): void => {
      output = (output + chunk.toString()).slice(-4000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
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
            `${JSON.stringify(argv)} exited with ${code ?? signal}: ${output.trim().split('\n').slice(-3).join(' | ')}`,
          ),
        );
    });
  });
}
