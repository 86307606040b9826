#!/usr/bin/env node
/** Composition root of the `hox` binary: the only place that reads argv, env and signals. */
import { CommanderError } from 'commander';
import { buildProgram } from '../cli/program.js';
import { EXIT, exitCodeFor } from '../cli/exit-codes.js';
import { HoxError } from '../shared/errors.js';

const stops: (() => Promise<void>)[] = [];
let stopping = false;

async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  process.stderr.write(`\n${signal}: stopping…\n`);
  for (const stop of stops.reverse())
    await stop().catch((e: unknown) => process.stderr.write(`error while stopping: ${String(e)}\n`));
  process.exit(EXIT.ok);
}
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGTERM', () => void shutdown('SIGTERM'));

const program = buildProgram({
  adminToken: process.env.HOX_ADMIN_TOKEN,
  masterUrl: process.env.HOX_MASTER_URL,
  print: (line) => process.stdout.write(`${line}\n`),
  onStop: (stop) => stops.push(stop),
});

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    process.exit(error.exitCode === 0 ? EXIT.ok : EXIT.usage);
  }
  const message = error instanceof HoxError ? error.message : error instanceof Error ? error.message : String(error);
  process.stderr.write(`hox: ${message}\n`);
  process.exit(exitCodeFor(error));
}
