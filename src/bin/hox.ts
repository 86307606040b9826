#!/usr/bin/env node
/** Composition root of the `hox` binary: the only place that reads argv, env and signals. */
import { CommanderError } from 'commander';
import { configPath } from '../cli/cli-config.js';
import { EXIT, exitCodeFor } from '../cli/exit-codes.js';
import { buildProgram } from '../cli/program.js';
import { HoxError } from '../shared/errors.js';

const stops: (() => Promise<void>)[] = [];
let stopping = false;
let signalStopped!: () => void;
const stopped = new Promise<void>((resolve) => (signalStopped = resolve));

async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  signalStopped();
  if (stops.length > 0) process.stderr.write(`\n${signal}: stopping…\n`);
  for (const stop of stops.reverse())
    await stop().catch((e: unknown) => process.stderr.write(`error while stopping: ${String(e)}\n`));
  process.exit(EXIT.ok);
}
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGTERM', () => void shutdown('SIGTERM'));

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

const program = buildProgram({
  adminToken: secretEnv.HOX_ADMIN_TOKEN,
  masterUrl: process.env.HOX_MASTER_URL,
  token: secretEnv.HOX_TOKEN,
  registerToken: secretEnv.HOX_REGISTER_TOKEN,
  databaseUrl: secretEnv.HOX_DATABASE_URL,
  storeKeyFile: process.env.HOX_STORE_KEY_FILE,
  readStdin,
  askLine: process.stdin.isTTY === true ? askLine : undefined,
  configPath: configPath(process.env),
  print: (line) => process.stdout.write(`${line}\n`),
  printErr: (line) => process.stderr.write(`${line}\n`),
  onStop: (stop) => stops.push(stop),
  stopped,
});

try {
  await program.parseAsync(process.argv);
  // Long-running commands (master, node, up) keep the event loop alive; the others end here.
} catch (error) {
  if (error instanceof CommanderError) {
    process.exit(error.exitCode === 0 ? EXIT.ok : EXIT.usage);
  }
  const message = error instanceof HoxError ? error.message : error instanceof Error ? error.message : String(error);
  process.stderr.write(`hox: ${message}\n`);
  process.exit(exitCodeFor(error));
}
