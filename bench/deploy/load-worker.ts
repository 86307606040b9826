/**
 * The load generator (src/testing/http-load.ts) on a worker thread, so that
 * its fetch loops do not share an event loop with the master running in the
 * benchmark process (the master's answers to the CLI and the agents would
 * wait behind them and inflate the redeploy times).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { startHttpLoad, type LoadResult } from '../../src/testing/http-load.js';

interface LoadRequest {
  url: string;
  concurrency: number;
  timeoutMs: number;
  /** A first load of this long, not counted (connections opened, code warm), before the measured one. */
  warmUpMs: number;
}

/** Starts the load on a worker thread (resolves once its loops run); `stop()` ends it and returns what it saw. */
export async function startLoadWorker(
  url: string,
  options: { concurrency: number; timeoutMs: number; warmUpMs?: number },
): Promise<{ stop(): Promise<LoadResult> }> {
  // A worker does not inherit tsx's loader on Node 20: the entry registers it, then imports this module.
  const entry = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(import.meta.url)}); })`;
  const worker = new Worker(entry, { eval: true, workerData: { url, warmUpMs: 0, ...options } satisfies LoadRequest });
  let onResult: (r: LoadResult) => void = () => {};
  const result = new Promise<LoadResult>((resolve, reject) => {
    onResult = resolve;
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`load worker exited (${code}) without a result`)));
  });
  const started = new Promise<void>((resolve) =>
    worker.on('message', (m: 'started' | LoadResult) => (m === 'started' ? resolve() : onResult(m))),
  );
  await Promise.race([started, result]);
  return {
    async stop() {
      worker.postMessage('stop');
      try {
        return await result;
      } finally {
        await worker.terminate();
      }
    },
  };
}

if (!isMainThread && parentPort !== null) {
  const port = parentPort;
  const request = workerData as LoadRequest;
  const options = { concurrency: request.concurrency, timeoutMs: request.timeoutMs };
  if (request.warmUpMs > 0) {
    const warmUp = startHttpLoad(request.url, options);
    await sleep(request.warmUpMs);
    await warmUp.stop();
  }
  const load = startHttpLoad(request.url, options);
  port.postMessage('started');
  port.once('message', () => {
    void load.stop().then((r) => port.postMessage(r));
  });
}
