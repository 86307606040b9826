/**
 * Runs one promise (health check) once. Failures are results, never
 * exceptions: the message names the target and what went wrong, because it
 * ends up in the instance's error status for a person to read.
 */
import type { PromiseSpec } from '../../release-kit/types.js';
import { checkCommand, type CommandContext } from './check-command.js';
import { checkHttp } from './check-http.js';
import type { CheckOutcome } from './check-outcome.js';
import { checkTcp, formatHostPort } from './check-tcp.js';
import { describeError } from './describe-error.js';

/** The outcome of one run of one promise. */
export interface PromiseResult {
  /** The promise's name, unique within its partition. */
  name: string;
  ok: boolean;
  /** Target and verdict, e.g. "tcp 127.1.0.1:8080: connection refused". */
  message: string;
  /** When the run started (epoch ms). */
  checkedAtMs: number;
  durationMs: number;
}

/** Where and as whom a command promise runs; tcp and http promises ignore it. */
export type PromiseCheckContext = CommandContext;

/** @default for {@link PromiseSpec} `timeoutMs`. */
export const DEFAULT_PROMISE_TIMEOUT_MS = 5000;
/** Bounds applied to `timeoutMs` (larger values would also overflow Node's timers). */
export const MIN_PROMISE_TIMEOUT_MS = 1;
export const MAX_PROMISE_TIMEOUT_MS = 60 * 60 * 1000;
/** Longest message kept: argv, URLs and needles come from release authors and may be long. */
export const MAX_PROMISE_MESSAGE_CHARS = 1000;
/** Longest rendering of one argv element in a message. */
const MAX_ARGUMENT_CHARS = 100;
/**
 * Every check enforces its own timeout and cleans up after itself; this outer
 * margin only guarantees the result comes even if one of them misbehaves.
 */
const SAFETY_MARGIN_MS = 2000;

/**
 * Runs one check once, bounded by `spec.timeoutMs` (default 5000). Never
 * throws: a failure is a result whose message names what failed.
 *
 * @example
 * const result = await checkPromise({ name: 'web', kind: 'http', url: 'http://127.0.0.1:8080/', bodyContains: 'ok' });
 * // { name: 'web', ok: false, message: "http http://127.0.0.1:8080/: status 500, expected 2xx or 3xx", ... }
 */
export async function checkPromise(spec: PromiseSpec, options: PromiseCheckContext = {}): Promise<PromiseResult> {
  const checkedAtMs = Date.now();
  const startedAt = performance.now();
  const timeoutMs = clampDurationMs(
    spec.timeoutMs,
    DEFAULT_PROMISE_TIMEOUT_MS,
    MIN_PROMISE_TIMEOUT_MS,
    MAX_PROMISE_TIMEOUT_MS,
  );
  let outcome: CheckOutcome;
  try {
    outcome = await withSafetyNet(runCheck(spec, options, timeoutMs), timeoutMs);
  } catch (error) {
    outcome = { ok: false, detail: describeError(error) };
  }
  let target: string;
  try {
    target = describeTarget(spec);
  } catch {
    // A malformed spec (profiles are plain JavaScript at run time) still gets a result.
    target = 'promise';
  }
  return {
    name: spec.name,
    ok: outcome.ok,
    message: truncate(`${target}: ${outcome.detail}`, MAX_PROMISE_MESSAGE_CHARS),
    checkedAtMs,
    durationMs: Math.round(performance.now() - startedAt),
  };
}

/** A duration option: the default when absent or not a positive finite number, else clamped to [min, max]. */
export function clampDurationMs(value: number | undefined, defaultMs: number, minMs: number, maxMs: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) return defaultMs;
  return Math.min(maxMs, Math.max(minMs, Math.round(value)));
}

function runCheck(spec: PromiseSpec, context: PromiseCheckContext, timeoutMs: number): Promise<CheckOutcome> {
  switch (spec.kind) {
    case 'tcp':
      return checkTcp(spec.host, spec.port, timeoutMs);
    case 'http':
      return checkHttp(spec, timeoutMs);
    case 'command':
      return checkCommand(spec.command, context, timeoutMs);
    default:
      // Specs come from release profiles, which are plain JavaScript at run time.
      return Promise.resolve({
        ok: false,
        detail: `unknown promise kind '${String((spec as { kind: unknown }).kind)}'`,
      });
  }
}

function describeTarget(spec: PromiseSpec): string {
  switch (spec.kind) {
    case 'tcp':
      return `tcp ${formatHostPort(spec.host, spec.port)}`;
    case 'http':
      return `http ${spec.url}`;
    case 'command':
      return `command ${formatArgv(spec.command)}`;
    default:
      return `promise '${String((spec as { name: unknown }).name)}'`;
  }
}

/** `['x', '-c', 'it\'s']`: readable, unambiguous, and bounded. */
function formatArgv(argv: readonly string[]): string {
  const quoted = argv.map((argument) => `'${escapeArgument(truncate(argument, MAX_ARGUMENT_CHARS))}'`);
  return `[${quoted.join(', ')}]`;
}

/** Backslash escapes for quotes and control characters, so that the message stays on one line. */
function escapeArgument(argument: string): string {
  return argument.replace(/[\\'\u0000-\u001f\u007f]/g, (character) => {
    switch (character) {
      case '\\':
        return '\\\\';
      case "'":
        return "\\'";
      case '\n':
        return '\\n';
      case '\r':
        return '\\r';
      case '\t':
        return '\\t';
      default:
        return `\\x${character.charCodeAt(0).toString(16).padStart(2, '0')}`;
    }
  });
}

function truncate(text: string, maxChars: number): string {
  return text.length <= maxChars ? text : `${text.slice(0, maxChars - 1)}…`;
}

async function withSafetyNet(check: Promise<CheckOutcome>, timeoutMs: number): Promise<CheckOutcome> {
  let timer: NodeJS.Timeout | undefined;
  const safety = new Promise<CheckOutcome>((resolve) => {
    timer = setTimeout(
      () => resolve({ ok: false, detail: `timed out after ${timeoutMs} ms` }),
      timeoutMs + SAFETY_MARGIN_MS,
    );
  });
  try {
    return await Promise.race([check, safety]);
  } finally {
    clearTimeout(timer);
  }
}
