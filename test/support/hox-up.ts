/** `hox up` from the sources, in its own process, for the tests that drive a whole platform (pilot, console). */
import { spawn } from 'node:child_process';
import { waitFor } from '../../src/testing/wait-for.js';
import { HOX_FROM_SOURCES, ROOT } from './hox-cli.js';

export interface HoxUpRun {
  /** Everything it printed so far (stdout and stderr). */
  output(): string;
  /** Ctrl-C, as a person stops it; resolves once it exited. */
  stop(): Promise<void>;
}

/** Starts `hox up ...args` and waits (up to 5 min) for its summary's last line; its output is in the error if not. */
export async function startHoxUp(args: readonly string[], env: NodeJS.ProcessEnv): Promise<HoxUpRun> {
  let output = '';
  const child = spawn(process.execPath, [...HOX_FROM_SOURCES, 'up', ...args], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd: ROOT,
  });
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const run: HoxUpRun = {
    output: () => output,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGINT');
      await exited;
    },
  };
  try {
    await waitFor('hox up', () => output.includes('hox up again brings it back') || child.exitCode !== null, 300_000);
  } catch (error) {
    await run.stop();
    throw new Error(`${(error as Error).message}; its output:\n${output}`);
  }
  if (child.exitCode !== null) throw new Error(`hox up exited with ${child.exitCode}; its output:\n${output}`);
  return run;
}
