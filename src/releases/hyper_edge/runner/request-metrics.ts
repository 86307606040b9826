/**
 * A replica's own series, for the platform's monitor: the requests its local Caddy proxied (by status code) and
 * their durations (a histogram), and the web process's state and crash restarts. Debian's Caddy 2.6 exposes no
 * per-request metrics, so the runner counts them from Caddy's access log, which Caddy writes as JSON lines to a
 * unix socket the runner listens on (Caddy's `net` log writer: nothing on disk, nothing to rotate).
 *
 * Written to `<partition>/.hox/metrics.prom` every {@link WRITE_EVERY_MS} (a temporary file renamed over it): the
 * node agent relays it to the master, which labels it with the app (tree) and the replica (instance).
 */
import { rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { writeMetricsFile } from '../../../release-kit/metrics-file.js';

export const WRITE_EVERY_MS = 5000;
/** A line longer than this is not an access log entry of ours: dropped (and the connection with it). */
const MAX_LINE = 64 * 1024;

export class RequestMetrics {
  readonly #registry = new Registry();
  readonly #requests = new Counter({
    name: 'hyperedge_requests_total',
    help: "Requests the replica's proxy answered, by HTTP status code.",
    labelNames: ['code'],
    registers: [this.#registry],
  });
  readonly #durations = new Histogram({
    name: 'hyperedge_request_duration_seconds',
    help: 'Time to answer a request through the replica, its app included.',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.#registry],
  });
  readonly #restarts = new Counter({
    name: 'hyperedge_web_restarts_total',
    help: 'Times the web process died on its own and was started again.',
    registers: [this.#registry],
  });
  readonly #webUp = new Gauge({
    name: 'hyperedge_web_up',
    help: '1 while the replica serves a release whose web process is up.',
    registers: [this.#registry],
  });
  #server: Server | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly partitionPath: string,
    private readonly log: (line: string) => void,
  ) {
    this.#requests.inc({ code: '200' }, 0); // the family is there from the start, at 0
  }

  /** Counts one access log entry (Caddy's JSON: `status`, `duration` in seconds); anything else is ignored. */
  record(line: string): void {
    let entry: unknown;
    try {
      entry = JSON.parse(line);
    } catch {
      return;
    }
    if (typeof entry !== 'object' || entry === null) return;
    const { status, duration } = entry as { status?: unknown; duration?: unknown };
    if (typeof status !== 'number' || !Number.isInteger(status)) return;
    this.#requests.inc({ code: status >= 100 && status <= 599 ? String(status) : 'other' });
    if (typeof duration === 'number' && Number.isFinite(duration) && duration >= 0) this.#durations.observe(duration);
  }

  webRestarted(): void {
    this.#restarts.inc();
  }

  setWebUp(up: boolean): void {
    this.#webUp.set(up ? 1 : 0);
  }

  /**
   * Listens for Caddy's access log on `socketPath`, and writes the metrics file every WRITE_EVERY_MS. Returns
   * whether it listens: if not (said in the log), Caddy must not be told to send its log there (it would refuse
   * the configuration), and the replica serves without request counts.
   */
  async start(socketPath: string): Promise<boolean> {
    this.#timer = setInterval(() => void this.write(), WRITE_EVERY_MS);
    await this.write();
    try {
      await this.#listen(socketPath);
      return true;
    } catch (error) {
      this.log(`no request counts: cannot listen on ${socketPath}: ${(error as Error).message}`);
      return false;
    }
  }

  async #listen(socketPath: string): Promise<void> {
    await rm(socketPath, { force: true });
    this.#server = createServer((connection) => {
      let pending = '';
      connection.setEncoding('utf8');
      connection.on('data', (chunk: string) => {
        pending += chunk;
        let end: number;
        while ((end = pending.indexOf('\n')) >= 0) {
          this.record(pending.slice(0, end));
          pending = pending.slice(end + 1);
        }
        if (pending.length > MAX_LINE) connection.destroy();
      });
      connection.on('error', () => undefined);
    });
    await new Promise<void>((resolve, reject) => {
      this.#server!.once('error', reject);
      this.#server!.listen(socketPath, () => resolve());
    });
    this.#server.on('error', (error) => this.log(`access log socket: ${error.message}`));
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await new Promise<void>((resolve) =>
      this.#server === undefined ? resolve() : this.#server.close(() => resolve()),
    );
  }

  async write(): Promise<void> {
    try {
      await writeMetricsFile(this.partitionPath, await this.#registry.metrics());
    } catch (error) {
      this.log(`metrics not written: ${(error as Error).message}`);
    }
  }
}
