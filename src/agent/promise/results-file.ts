/**
 * The results file of a partition: the latest result of each of its promises,
 * kept on disk so that a restarted agent knows the last state.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { PromiseResult } from './check-promise.js';

export interface ResultsFileContent {
  version: 1;
  partitionId: string;
  results: PromiseResult[];
}

/**
 * The results stored in the file; `undefined` when there is no file.
 * Throws (naming the file) when it exists but cannot be read or parsed.
 * Entries of the wrong shape are skipped.
 */
export function readResultsFile(path: string): PromiseResult[] | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as { code?: unknown }).code === 'ENOENT') return undefined;
    throw new Error(`promise results file '${path}' cannot be read`, { cause: error });
  }
  let content: unknown;
  try {
    content = JSON.parse(text);
  } catch (error) {
    throw new Error(`promise results file '${path}' is not valid JSON`, { cause: error });
  }
  const results = (content as { results?: unknown } | null)?.results;
  if (!Array.isArray(results)) throw new Error(`promise results file '${path}' has no results list`);
  return results.filter(isPromiseResult).map((result) => ({
    name: result.name,
    ok: result.ok,
    message: result.message,
    checkedAtMs: result.checkedAtMs,
    durationMs: result.durationMs,
  }));
}

/** Writes the file atomically: a temporary file beside it, then rename. Creates the directory if needed. */
export async function writeResultsFile(path: string, partitionId: string, results: PromiseResult[]): Promise<void> {
  const content: ResultsFileContent = { version: 1, partitionId, results };
  const temporaryPath = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await mkdir(dirname(path), { recursive: true });
  try {
    await writeFile(temporaryPath, `${JSON.stringify(content, null, 2)}\n`, { mode: 0o640 });
    await rename(temporaryPath, path);
  } catch (error) {
    await rm(temporaryPath, { force: true }).catch(() => undefined);
    throw new Error(`promise results file '${path}' cannot be written`, { cause: error });
  }
}

export async function deleteResultsFile(path: string): Promise<void> {
  try {
    await rm(path, { force: true });
  } catch (error) {
    throw new Error(`promise results file '${path}' cannot be deleted`, { cause: error });
  }
}

function isPromiseResult(value: unknown): value is PromiseResult {
  if (typeof value !== 'object' || value === null) return false;
  const result = value as Record<string, unknown>;
  return (
    typeof result.name === 'string' &&
    typeof result.ok === 'boolean' &&
    typeof result.message === 'string' &&
    typeof result.checkedAtMs === 'number' &&
    typeof result.durationMs === 'number'
  );
}
