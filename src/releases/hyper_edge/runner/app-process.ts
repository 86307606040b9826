/**
 * One process of the app (`web`, a worker, a build or release command), run
 * with `sh -c` in its own process group; every output line goes to the
 * runner's log prefixed with its name and version, so `hox logs` shows them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';

export interface ProcessOptions {
  /** e.g. `web v3` (log prefix). */
  label: string;
  /** Run with `sh -c` (the manifest's commands). */
  command: string;
  /** Run as is, without a shell, instead of `command` (`hox app run`'s argument vector). */
  argv?: readonly string[];
  cwd: string;
  env: Record<string, string>;
  log: (line: string) => void;
  /** A file descriptor the process reads as its standard input. @default none */
  stdinFd?: number;
  /**
   * Told the process group at once (the runner records it): the group is detached, so a runner that is
   * restarted leaves it running unless the next runner kills it — a build left running beside the next
   * runner's build of the same directory broke it ("npm error enoent", seen in a full run).
   */
  onSpawn?: (group: number, exited: Promise<unknown>) => void;
}

export class AppProcess {
  readonly child: ChildProcess;
  /** The last lines of output, for error messages. */
  private readonly tail: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly startedAt = new Date().toISOString();

  constructor(private readonly options: ProcessOptions) {
    const [file, args] =
      options.argv === undefined || options.argv.length === 0
        ? ['/bin/sh', ['-c', options.command]]
        : [options.argv[0]!, options.argv.slice(1)];
    this.child = spawn(file, args, {
      cwd: options.cwd,
      env: options.env,
      detached: true,
      stdio: [options.stdinFd ?? 'ignore', 'pipe', 'pipe'],
    });
    for (const stream of [this.child.stdout, this.child.stderr])
      if (stream !== null)
        createInterface({ input: stream }).on('line', (line) => {
          this.tail.push(line);
          if (this.tail.length > 20) this.tail.shift();
          options.log(`[${options.label}] ${line}`);
        });
    this.exited = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => resolve({ code, signal }));
      this.child.on('error', (error) => {
        // A program that cannot be started (not found, not executable): say so where its output would be.
        const line = `cannot start: ${error.message}`;
        this.tail.push(line);
        options.log(`[${options.label}] ${line}`);
        resolve({ code: 127, signal: null });
      });
    });
    if (this.child.pid !== undefined) options.onSpawn?.(this.child.pid, this.exited);
  }

  /** e.g. `web v3`. */
  get label(): string {
    return this.options.label;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /**
   * The pid of the command itself: `sh -c CMD` runs CMD as its only child (when it does not exec it), and
   * that child is what `hox app ps` shows (the pid the app sees as process.pid). Else the shell's own pid;
   * null before it started.
   */
  mainPid(): number | null {
    const pid = this.child.pid;
    if (pid === undefined) return null;
    if (this.options.argv !== undefined && this.options.argv.length > 0) return pid;
    try {
      const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/);
      if (children.length === 1 && /^\d+$/.test(children[0]!)) return Number(children[0]);
    } catch {
      // gone, or no /proc: the shell's pid
    }
    return pid;
  }

  /** What went wrong in the process's own words, for error messages: see {@link outputSummary}. */
  summary(): string {
    return outputSummary(this.tail);
  }

  /** SIGTERM to the group, SIGKILL after `timeoutMs`. */
  async stop(timeoutMs: number): Promise<void> {
    if (!this.running || this.child.pid === undefined) return;
    this.signal('SIGTERM');
    const timer = setTimeout(() => this.signal('SIGKILL'), timeoutMs);
    await this.exited;
    clearTimeout(timer);
    // Whatever the shell left behind in the group.
    this.signal('SIGKILL');
  }

  private signal(signal: NodeJS.Signals): void {
    try {
      process.kill(-this.child.pid!, signal);
    } catch {
      // already gone
    }
  }
}

const NPM_ERROR = /^npm (?:error|ERR!)(?: (.*))?$/;
const NO_START_SCRIPT = /Missing script: "start"/;

/**
 * The useful part of a failed process's last output lines, joined with ' | '. npm ends a failure with its help
 * (`Did you mean one of these?`, `To see a list of scripts…`, the path of its debug log), which buries the one
 * line that says what is wrong: from npm's output, its first error paragraph is kept (at most 3 lines), with
 * the fix when it is the `start` script that is missing. Any other output: its last `count` lines.
 * @example
 * outputSummary(['npm error Missing script: "start"', 'npm error', 'npm error Did you mean one of these?'])
 * // 'npm error Missing script: "start" — add a "start" script to package.json, or a Procfile line …'
 */
export function outputSummary(lines: readonly string[], count = 5): string {
  const first = lines.findIndex((line) => (NPM_ERROR.exec(line)?.[1] ?? '').trim() !== '');
  if (first === -1) return lines.slice(-count).join(' | ');
  const paragraph: string[] = [];
  for (const line of lines.slice(first)) {
    const text = NPM_ERROR.exec(line)?.[1]?.trim();
    if (text === undefined || text === '' || text.startsWith('A complete log of this run') || paragraph.length === 3)
      break;
    paragraph.push(line);
  }
  const summary = paragraph.join(' | ');
  if (!NO_START_SCRIPT.test(summary)) return summary;
  return (
    `${summary} — add a "start" script to package.json, or a Procfile line that starts the server on ` +
    `$HOST:$PORT, e.g. 'web: node index.js'`
  );
}

/**
 * Runs a command to completion; rejects with its last output lines on failure or after `timeoutMs`.
 * `stdinPath` is opened here and given to the command as its standard input, so the path (a source
 * archive's name…) never appears on its command line, which every user on the node can read.
 */
export async function runToCompletion(
  options: ProcessOptions & { timeoutMs: number; stdinPath?: string },
): Promise<void> {
  let p: AppProcess;
  if (options.stdinPath === undefined) p = new AppProcess(options);
  else {
    const input = await open(options.stdinPath, 'r');
    try {
      p = new AppProcess({ ...options, stdinFd: input.fd });
    } finally {
      // The child has its own copy of the descriptor.
      await input.close();
    }
  }
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    void p.stop(2000);
  }, options.timeoutMs);
  const result = await p.exited;
  clearTimeout(timer);
  // The last lines may still be in the pipes: give them a moment.
  await Promise.race([once(p.child, 'close'), sleep(500)]);
  if (result.code === 0 && !timedOut) return;
  const how = timedOut
    ? `stopped after its ${Math.round(options.timeoutMs / 1000)} s limit`
    : result.signal !== null
      ? `killed by ${result.signal}`
      : `exit ${result.code}`;
  throw new Error(`${options.label}: \`${options.command}\` failed (${how}): ${p.summary() || 'no output'}`);
}
