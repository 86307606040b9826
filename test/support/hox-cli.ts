/** Runs the `hox` CLI from the sources (through tsx), as a user would run the built one. */
import { execFile } from 'node:child_process';
import { join } from 'node:path';

export const ROOT = join(import.meta.dirname, '..', '..');

/** Node's arguments that run `hox` from the sources: `spawn(process.execPath, [...HOX_FROM_SOURCES, ...args])`. */
export const HOX_FROM_SOURCES: readonly string[] = ['--import', 'tsx', join(ROOT, 'src', 'bin', 'hox.ts')];

export interface HoxRun {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * `hox ...args` with `env`; resolves with its exit code and output, never rejects. With `input`, that text is
 * its stdin (`hox login --with-token -`).
 */
export function runHox(
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  timeoutMs = 180_000,
  input?: string,
): Promise<HoxRun> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [...HOX_FROM_SOURCES, ...args],
      { env, timeout: timeoutMs, cwd: ROOT, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) =>
        resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr }),
    );
    if (input !== undefined) child.stdin?.end(input);
  });
}
