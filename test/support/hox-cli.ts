/** Runs the `hox` CLI from the sources (through tsx), as a user would run the built one. */
import { execFile } from 'node:child_process';
import { join } from 'node:path';

export const ROOT = join(import.meta.dirname, '..', '..');

export interface HoxRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** `hox ...args` with `env`; resolves with its exit code and output, never rejects. */
export function runHox(args: readonly string[], env: NodeJS.ProcessEnv, timeoutMs = 180_000): Promise<HoxRun> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', join(ROOT, 'src', 'bin', 'hox.ts'), ...args],
      { env, timeout: timeoutMs, cwd: ROOT, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) =>
        resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr }),
    );
  });
}
