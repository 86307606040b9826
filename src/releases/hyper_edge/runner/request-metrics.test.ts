import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parsePartitionMetrics } from '../../../agent/partition-metrics.js';
import { RequestMetrics } from './request-metrics.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** What the node agent would relay of the file: family → samples. */
function relayed(path: string) {
  const { families, dropped } = parsePartitionMetrics(readFileSync(join(path, '.hox', 'metrics.prom'), 'utf8'));
  expect(dropped).toEqual([]);
  return new Map(families.map((f) => [f.name, f]));
}

describe("a replica's request metrics", () => {
  it("counts Caddy's access log lines from its socket, by status, with their durations, and writes them for the agent", async () => {
    const path = mkdtempSync(join(tmpdir(), 'hox-reqm-'));
    dirs.push(path);
    const logged: string[] = [];
    const metrics = new RequestMetrics(path, (l) => logged.push(l));
    const socket = join(path, 'access.sock');
    expect(await metrics.start(socket)).toBe(true);
    try {
      const entry = (status: number, duration: number) =>
        `${JSON.stringify({ logger: 'http.log.access.access', msg: 'handled request', status, duration, size: 3 })}\n`;
      const client = connect(socket);
      await new Promise<void>((resolve) => client.once('connect', () => resolve()));
      const text = entry(200, 0.004) + entry(200, 0.2) + entry(503, 0.001) + 'not json\n' + entry(502, 3);
      // One entry split across two writes, as a stream may deliver it.
      client.write(text.slice(0, 50));
      await new Promise((r) => setTimeout(r, 50));
      client.write(text.slice(50));
      client.end();
      metrics.webRestarted();
      metrics.setWebUp(true);
      await new Promise((r) => setTimeout(r, 200));
      await metrics.write();
      const families = relayed(path);
      const count = (code: string) =>
        families.get('hyperedge_requests_total')!.samples.find((s) => s.labels['code'] === code)?.value;
      expect(count('200')).toBe(2);
      expect(count('503')).toBe(1);
      expect(count('502')).toBe(1);
      const histogram = families.get('hyperedge_request_duration_seconds')!;
      expect(histogram.type).toBe('histogram');
      expect(histogram.samples.find((s) => s.suffix === '_count')?.value).toBe(4);
      expect(histogram.samples.find((s) => s.suffix === '_bucket' && s.labels['le'] === '0.005')?.value).toBe(2);
      expect(families.get('hyperedge_web_restarts_total')!.samples[0]!.value).toBe(1);
      expect(families.get('hyperedge_web_up')!.samples[0]!.value).toBe(1);
    } finally {
      await metrics.stop();
    }
    expect(logged).toEqual([]);
  });

  it('says so, and serves on, when it cannot listen', async () => {
    const path = mkdtempSync(join(tmpdir(), 'hox-reqm-'));
    dirs.push(path);
    const logged: string[] = [];
    const metrics = new RequestMetrics(path, (l) => logged.push(l));
    expect(await metrics.start(join(path, 'no', 'such', 'dir', 'access.sock'))).toBe(false);
    await metrics.stop();
    expect(logged[0]).toMatch(/^no request counts: cannot listen on /);
    // The file is written all the same (web state and restarts).
    expect(relayed(path).has('hyperedge_web_up')).toBe(true);
  });
});
