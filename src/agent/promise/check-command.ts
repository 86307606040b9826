import { spawn, type ChildProcess } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { isolatedCommand, type PartitionIsolation } from '../isolate/partition-launch.js';
import type { CheckOutcome } from './check-outcome.js';
import { describeError } from './describe-error.js';

/** Longest output line quoted in a message. */
export const MAX_OUTPUT_LINE_CHARS = 300;
/** How much of each output stream is kept: enough for the last line, bounded whatever the command prints. */
const OUTPUT_TAIL_BYTES = 16 * 1024;
/**
 * After the command exits, how long to wait for its pipes to close: a
 * daemonised grandchild can hold them open forever.
 */
const PIPE_DRAIN_MS = 200;

export interface CommandContext {
  cwd?: string;
  uid?: number;
  gid?: number;
  /** The complete environment (the caller composes it); the agent's own when absent. */
  env?: Record<string, string>;
  /** Run inside the partition's isolation (as `isolation.uid`; `uid`/`gid` are then not used). */
  isolation?: PartitionIsolation | undefined;
}

/**
 * Runs argv without a shell; passes on exit 0. On timeout the command's whole
 * process group is killed (it runs in its own session), so a promise script
 * cannot leave stray children behind.
 */
export async function checkCommand(argv: string[], context: CommandContext, timeoutMs: number): Promise<CheckOutcome> {
  const [file, ...args] = argv;
  if (file === undefined || file === '') return { ok: false, detail: 'empty command' };
  if (context.cwd !== undefined) {
    // spawn reports a missing cwd as the command being missing; say what is really wrong.
    const isDirectory = await stat(context.cwd).then(
      (stats) => stats.isDirectory(),
      () => false,
    );
    if (!isDirectory) return { ok: false, detail: `working directory '${context.cwd}' does not exist` };
  }
  return runCommand(file, args, context, timeoutMs);
}

function runCommand(file: string, args: string[], context: CommandContext, timeoutMs: number): Promise<CheckOutcome> {
  return new Promise((resolve) => {
    const stdout = new OutputTail(OUTPUT_TAIL_BYTES);
    const stderr = new OutputTail(OUTPUT_TAIL_BYTES);
    const lastLine = (): string | undefined => stderr.lastLine() ?? stdout.lastLine();
    let child: ChildProcess | undefined;
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    let drain: NodeJS.Timeout | undefined;
    let settled = false;

    const finish = (outcome: CheckOutcome): void => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      clearTimeout(drain);
      child?.stdout?.destroy();
      child?.stderr?.destroy();
      resolve(outcome);
    };
    const finishExited = (): void => {
      if (exit !== undefined) finish(exitOutcome(exit.code, exit.signal, lastLine()));
    };
    const deadline = setTimeout(() => {
      killProcessGroup(child);
      if (exit !== undefined) return finishExited();
      const line = lastLine();
      finish({ ok: false, detail: `timed out after ${timeoutMs} ms${line === undefined ? '' : `: ${line}`}` });
    }, timeoutMs);

    try {
      const env = context.env ?? process.env;
      if (context.isolation === undefined) {
        child = spawn(file, args, {
          cwd: context.cwd,
          uid: context.uid,
          gid: context.gid,
          env,
          stdio: ['ignore', 'pipe', 'pipe'],
          detached: true,
        });
      } else {
        const definedEnv = Object.fromEntries(
          Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined),
        );
        const command = isolatedCommand(context.isolation, { file, args, cwd: context.cwd ?? '/', env: definedEnv });
        child = spawn(command.file, command.args, {
          cwd: '/',
          env: command.env,
          stdio: ['ignore', 'pipe', 'pipe'],
          detached: true,
        });
      }
    } catch (error) {
      finish({ ok: false, detail: `cannot start: ${describeError(error)}` });
      return;
    }
    const spawned = child;
    spawned.stdout?.on('data', (chunk: Buffer) => stdout.push(chunk));
    spawned.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk));
    spawned.on('error', (error) => {
      killProcessGroup(spawned);
      finish({ ok: false, detail: `cannot start: ${describeSpawnError(error, file)}` });
    });
    spawned.on('exit', (code, signal) => {
      exit = { code, signal };
      drain = setTimeout(finishExited, PIPE_DRAIN_MS);
    });
    spawned.on('close', finishExited);
  });
}

function exitOutcome(code: number | null, signal: NodeJS.Signals | null, line: string | undefined): CheckOutcome {
  const status = code === null ? `killed by ${signal ?? 'a signal'}` : `exit ${code}`;
  if (code === 0) return { ok: true, detail: status };
  return { ok: false, detail: line === undefined ? status : `${status}: ${line}` };
}

function describeSpawnError(error: Error, file: string): string {
  const code = (error as { code?: unknown }).code;
  if (code === 'ENOENT') return `'${file}' not found`;
  if (code === 'EACCES') return `'${file}' is not executable`;
  return describeError(error);
}

function killProcessGroup(child: ChildProcess | undefined): void {
  if (child?.pid === undefined) return;
  try {
    // Negative pid: the whole group the detached child leads.
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

/** The last bytes of a stream, and its last non-empty line. */
class OutputTail {
  readonly #maxBytes: number;
  #chunks: Buffer[] = [];
  #size = 0;

  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
  }

  push(chunk: Buffer): void {
    this.#chunks.push(chunk);
    this.#size += chunk.byteLength;
    while (this.#size > this.#maxBytes && this.#chunks.length > 1) {
      this.#size -= this.#chunks.shift()?.byteLength ?? 0;
    }
    if (this.#size > this.#maxBytes) {
      const only = Buffer.concat(this.#chunks);
      this.#chunks = [only.subarray(only.byteLength - this.#maxBytes)];
      this.#size = this.#maxBytes;
    }
  }

  lastLine(): string | undefined {
    const lines = Buffer.concat(this.#chunks).toString('utf8').split(/\r?\n/);
    for (let index = lines.length - 1; index >= 0; index--) {
      const line = lines[index]?.trim();
      if (line) return truncate(line, MAX_OUTPUT_LINE_CHARS);
    }
    return undefined;
  }
}

function truncate(text: string, maxChars: number): string {
  return text.length <= maxChars ? text : `${text.slice(0, maxChars - 1)}…`;
}
