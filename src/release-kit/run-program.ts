/**
 * How a release's long-running program (a service's command) starts and stops: `start`, and on SIGTERM or SIGINT
 * (the supervisor stopping the service) its stop, once, then exit 0 — or 1 with the stack when stopping failed. A
 * `start` that fails prints its stack and exits 1, and the supervisor restarts the service.
 *
 * `start` may return its stop (what it opened: servers, timers, watchers), or `stop` may be given beside it.
 *
 * @example
 * runProgram(() => keeper.start(), () => keeper.stop());
 * runProgram(async () => { const server = await listen(); return () => server.close(); });
 */
export type StopProgram = () => Promise<void> | void;

export function runProgram(start: () => Promise<StopProgram | void>, stop?: StopProgram): void {
  let stopProgram = stop;
  let stopping = false;
  const failed = (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  };
  const onSignal = (): void => {
    if (stopping) return;
    stopping = true;
    Promise.resolve()
      .then(() => stopProgram?.())
      .then(() => process.exit(0), failed);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  start().then((returned) => {
    if (typeof returned === 'function') stopProgram = returned;
  }, failed);
}
