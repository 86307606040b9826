#!/usr/bin/env node
/** Composition root of the `hox` binary: the only place that reads argv, env and signals. */
import { HOX_VERSION } from '../cli/version.js';

// `hox --version` needs nothing else: answered before the program (commander, every command) is even imported.
const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
  process.stdout.write(`${HOX_VERSION}\n`);
  process.exit(0);
}

const [{ CommanderError }, { configPath }, { EXIT, exitCodeFor }, { loadProgram }] = await Promise.all([
  import('commander'),
  import('../cli/cli-config.js'),
  import('../cli/exit-codes.js'),
  import('../cli/program-loader.js'),
]);

const stops: (() => Promise<void>)[] = [];
let services = 0;
let stopping = false;
let signalStopped!: () => void;
const stopped = new Promise<void>((resolve) => (signalStopped = resolve));

async function shutdown(reason: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  signalStopped();
  if (stops.length > 0) writeErr(`\n${reason}: stopping…\n`);
  for (const stop of stops.reverse())
    await stop().catch((e: unknown) => writeErr(`error while stopping: ${String(e)}\n`));
  // A stopped service ends normally, and so does a command whose reader went away; an interrupted client
  // command (`hox app run`, `hox db create --wait`) exits 128 + the signal's number, as shells expect.
  const signal = reason === 'SIGINT' ? 2 : reason === 'SIGTERM' ? 15 : 0;
  process.exit(services > 0 || signal === 0 ? EXIT.ok : 128 + signal);
}
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGTERM', () => void shutdown('SIGTERM'));

// A reader that goes away (`hox list | head`) is a normal end, not a crash: output stops, what runs is stopped
// as on Ctrl-C, and the exit is 0. Node ignores SIGPIPE, so a closed pipe shows up as EPIPE on the stream.
const closed = { stdout: false, stderr: false };
for (const name of ['stdout', 'stderr'] as const)
  process[name].on('error', (error: NodeJS.ErrnoException) => {
    if (closed[name]) return;
    closed[name] = true;
    if (error.code === 'EPIPE' || error.code === 'ERR_STREAM_DESTROYED') void shutdown(`${name} closed`);
    else {
      // Any other output failure (a full disk under `> file`): say so where still possible, and fail.
      if (name === 'stdout') writeErr(`hox: cannot write output: ${error.message}\n`);
      process.exit(EXIT.failed);
    }
  });
function writeOut(text: string): void {
  if (!closed.stdout) process.stdout.write(text);
}
function writeErr(text: string): void {
  if (!closed.stderr) process.stderr.write(text);
}

// Secrets are read from the environment once, then removed from it: no process hox starts inherits them.
const SECRET_ENV = ['HOX_ADMIN_TOKEN', 'HOX_TOKEN', 'HOX_REGISTER_TOKEN', 'HOX_DATABASE_URL'] as const;
const secretEnv = Object.fromEntries(SECRET_ENV.map((name) => [name, process.env[name]]));
for (const name of SECRET_ENV) delete process.env[name];

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** One line typed on the terminal; the question goes to stderr so stdout stays the command's output. */
async function askLine(question: string): Promise<string> {
  // Loaded only when a command asks: most commands never do, and start-up time counts.
  const { createInterface } = await import('node:readline');
  return new Promise((resolve) => {
    const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
    let answered = false;
    const done = (line: string) => {
      if (answered) return;
      answered = true;
      rl.close();
      resolve(line);
    };
    rl.on('SIGINT', () => {
      process.stderr.write('\n');
      done('');
    });
    rl.on('close', () => done(''));
    rl.question(question, done);
  });
}

// Only the command named on the command line is imported and built (all of them for --help and the like).
const program = await loadProgram(
  {
    adminToken: secretEnv.HOX_ADMIN_TOKEN,
    masterUrl: process.env.HOX_MASTER_URL,
    token: secretEnv.HOX_TOKEN,
    caFile: process.env.HOX_CA_FILE,
    registerToken: secretEnv.HOX_REGISTER_TOKEN,
    databaseUrl: secretEnv.HOX_DATABASE_URL,
    storeKeyFile: process.env.HOX_STORE_KEY_FILE,
    readStdin,
    askLine: process.stdin.isTTY === true ? askLine : undefined,
    configPath: configPath(process.env),
    print: (line) => writeOut(`${line}\n`),
    printErr: (line) => writeErr(`${line}\n`),
    onStop: (stop, kind = 'service') => {
      stops.push(stop);
      if (kind === 'service') services++;
    },
    stopped,
  },
  args,
);

try {
  await program.parseAsync(process.argv);
  // Long-running commands (master, node, up) keep the event loop alive; the others end here.
} catch (error) {
  if (error instanceof CommanderError) {
    process.exit(error.exitCode === 0 ? EXIT.ok : EXIT.usage);
  }
  writeErr(`hox: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(exitCodeFor(error));
}
