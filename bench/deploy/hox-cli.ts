/**
 * The `hox` CLI as a user runs it (`node --import tsx src/bin/hox.ts …`), for
 * the deploy benchmark: every call is a real child process against the
 * platform's master; the children still running can be killed at cleanup.
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

export interface HoxRun {
  code: number;
  stdout: string;
  stderr: string;
  /** Wall time of the child process, from spawn to exit. */
  wallMs: number;
}

export class HoxCli {
  private readonly running = new Set<ChildProcess>();

  constructor(
    private readonly options: {
      /** The repository root (where src/bin/hox.ts is). */
      root: string;
      masterUrl: string;
      adminToken: string;
      /** HOX_CONFIG of the calls: a file in a temporary home. */
      configPath: string;
    },
  ) {}

  /** Runs `hox ...args`; never throws for a non-zero exit (see {@link ok}). */
  run(args: string[], timeoutMs = 600_000): Promise<HoxRun> {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      HOX_CONFIG: this.options.configPath,
      HOX_MASTER_URL: this.options.masterUrl,
      HOX_TOKEN: this.options.adminToken,
      // Debian's python3 (with python3-flask and python3-psycopg2) first, as in test/hyper-edge.test.ts.
      PATH: `/usr/bin:${process.env.PATH ?? ''}`,
    };
    const started = performance.now();
    return new Promise((resolve) => {
      const child = execFile(
        process.execPath,
        ['--import', 'tsx', join(this.options.root, 'src', 'bin', 'hox.ts'), ...args],
        { env, timeout: timeoutMs, cwd: this.options.root, maxBuffer: 16 * 1024 * 1024 },
        (error, stdout, stderr) => {
          this.running.delete(child);
          const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
          resolve({ code, stdout, stderr, wallMs: performance.now() - started });
        },
      );
      this.running.add(child);
    });
  }

  /** Runs `hox ...args` and throws with its output (and `context()`, when given) unless it exits 0. */
  async ok(args: string[], context?: () => Promise<string>): Promise<HoxRun> {
    const run = await this.run(args);
    if (run.code !== 0) {
      const more = context === undefined ? '' : await context().catch((e: unknown) => String(e));
      throw new Error(`hox ${args.join(' ')} exited ${run.code}\n${run.stdout}\n${run.stderr}\n${more}`);
    }
    return run;
  }

  /** SIGKILLs every call still running (cleanup after an error or Ctrl-C). */
  killAll(): void {
    for (const child of this.running) child.kill('SIGKILL');
    this.running.clear();
  }
}
