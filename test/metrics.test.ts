/**
 * The master's `GET /metrics` (issue 16: metrics in the Prometheus text format) on both stores: the API's counters,
 * each node's own metrics as its agent collects them, each partition's usage labelled with its tree; the admin's
 * token only. And the agent's collector against `df`, an independent reading of the same filesystem.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { totalmem, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { collectNodeMetrics } from '../src/agent/node-metrics.js';
import { METRICS_FILE, parsePartitionMetrics, PartitionMetricsReader } from '../src/agent/partition-metrics.js';
import { addTestNode } from '../src/testing/test-master.js';
import { expectError, RELEASE, request } from './support/helpers.js';
import { describeEachStore } from './support/store-matrix.js';

const MiB = 1024 * 1024;

async function scrape(url: string, token?: string): Promise<{ status: number; type: string | null; text: string }> {
  const answer = await fetch(
    `${url}/metrics`,
    token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } },
  );
  return { status: answer.status, type: answer.headers.get('content-type'), text: await answer.text() };
}

/** The value of one series in a Prometheus text answer (labels as written, in order). */
function valueOf(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describeEachStore('GET /metrics', (env) => {
  it("shows the API, each node's own metrics and each partition's usage, to the admin only", async () => {
    const m = await env.startMaster();
    const n1 = await addTestNode(m.admin, 'n1', { partitions: 2, releases: [RELEASE] });
    const n2 = await addTestNode(m.admin, 'n2', { partitions: 1, releases: [RELEASE] });
    const { token: aliceToken, user_id: aliceId } = await m.admin.call('createUser', { name: 'alice' });
    const alice = m.admin.withToken(aliceToken);
    const doc = await request(alice, 'shop', { sla_parameters: { computer_guid: 'n1' } });

    // What n1's agent would send: its real metrics, and one partition's usage.
    const dir = mkdtempSync(join(tmpdir(), 'hox-metrics-'));
    try {
      const metrics = await collectNodeMetrics([dir]);
      await n1.client.call('reportNodeMetrics', { computer_guid: 'n1', metrics });
      await n1.client.call('reportPartitionUsage', {
        computer_guid: 'n1',
        partition_usage_list: [
          {
            compute_partition_id: doc.compute_partition_id,
            instance_guid: doc.instance_guid,
            limits: { memory_bytes: 64 * MiB, cpus: 0.5, pids: 40, disk_bytes: 1024 * MiB, log_bytes: MiB },
            not_enforced: [],
            not_enforced_reason: null,
            usage: { memory_bytes: 12 * MiB, pids: 3, oom_kills: 0, disk_bytes: 80 * 1024 },
            age_ms: 1000,
            disk_age_ms: 2000,
          },
        ],
      });

      await n1.client.call('reportPromiseResults', {
        computer_guid: 'n1',
        promise_report_list: [
          {
            compute_partition_id: doc.compute_partition_id,
            instance_guid: doc.instance_guid,
            promise_list: [
              { name: 'port', result: 'ok', message: 'tcp: connected', age_ms: 1000 },
              { name: 'http', result: 'failed', message: 'status 500', age_ms: 1000 },
              { name: 'slow', result: 'never_run', message: null, age_ms: null },
            ],
          },
        ],
      });

      const answer = await scrape(m.url, m.adminToken);
      expect(answer.status, answer.text).toBe(200);
      expect(answer.type).toMatch(/^text\/plain; version=0\.0\.4/);
      const t = answer.text;
      expect(valueOf(t, 'hox_node_memory_total_bytes{node="n1"}')).toBe(totalmem());
      expect(valueOf(t, 'hox_node_cpus{node="n1"}')).toBe(metrics.cpus);
      const fs = metrics.filesystems[0]!;
      expect(fs.path).toBe(dir);
      expect(valueOf(t, `hox_node_filesystem_size_bytes{node="n1",path="${dir}"}`)).toBe(fs.size_bytes);
      expect(valueOf(t, `hox_node_filesystem_files_free{node="n1",path="${dir}"}`)).toBe(fs.files_free);
      expect(valueOf(t, 'hox_node_cpu_seconds_total{node="n1",mode="idle"}')).toBeCloseTo(metrics.cpu_seconds.idle, 1);
      // n2 reported nothing of its own: none of its series, but its last contact.
      expect(t).not.toContain('hox_node_memory_total_bytes{node="n2"}');
      expect(valueOf(t, 'hox_node_last_contact_age_seconds{node="n2"}')).toBeGreaterThanOrEqual(0);
      const partition = `node="n1",partition="${doc.compute_partition_id}",tree="shop",instance="shop",owner="${aliceId}"`;
      expect(valueOf(t, `hox_partition_memory_bytes{${partition}}`)).toBe(12 * MiB);
      expect(valueOf(t, `hox_partition_disk_limit_bytes{${partition}}`)).toBe(1024 * MiB);
      expect(valueOf(t, `hox_partition_pids{${partition}}`)).toBe(3);
      expect(valueOf(t, `hox_promise_ok{${partition},promise="port"}`)).toBe(1);
      expect(valueOf(t, `hox_promise_ok{${partition},promise="http"}`)).toBe(0);
      expect(t).not.toContain('promise="slow"');
      // The API's own counters, by registered route.
      expect(valueOf(t, 'hox_api_requests_total{route="/hox.put.v1.node_metrics",status="200"}')).toBe(1);
      expect(t).toMatch(/^hox_api_request_duration_seconds_count\{route="\/hox\.put\.v1\.partition_usage"\} 1$/m);
      // Nothing of a token or a secret.
      expect(t).not.toContain(m.adminToken);

      // The admin's only: it spans every tenant.
      expect((await scrape(m.url)).status).toBe(401);
      expect((await scrape(m.url, aliceToken)).status).toBe(403);
      expect((await scrape(m.url, n1.token)).status).toBe(403);
      // A node reports its own metrics only, and in shape.
      await expectError(n2.client.call('reportNodeMetrics', { computer_guid: 'n1', metrics }), 'HOX_FORBIDDEN');
      await expectError(
        n1.client.call('reportNodeMetrics', { computer_guid: 'n1', metrics: { ...metrics, load1: -1 } }),
        'HOX_BAD_REQUEST',
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describeEachStore("GET /metrics: what partitions' services expose, relayed by their node", (env) => {
  it('labels it as the master knows the partition, and lets no partition pose as another or as the platform', async () => {
    const m = await env.startMaster();
    const n1 = await addTestNode(m.admin, 'n1', { partitions: 2, releases: [RELEASE] });
    const n2 = await addTestNode(m.admin, 'n2', { partitions: 1, releases: [RELEASE] });
    const { token: aliceToken, user_id: aliceId } = await m.admin.call('createUser', { name: 'alice' });
    const doc = await request(m.admin.withToken(aliceToken), 'shop', { sla_parameters: { computer_guid: 'n1' } });
    const metrics = await collectNodeMetrics([]);
    const { families } = parsePartitionMetrics(
      [
        '# HELP app_requests_total Requests "served".',
        '# TYPE app_requests_total counter',
        'app_requests_total{code="200",instance="spoof",job="x"} 42',
        '# TYPE app_latency_seconds histogram',
        'app_latency_seconds_bucket{le="0.1"} 3',
        'app_latency_seconds_bucket{le="+Inf"} 5',
        'app_latency_seconds_sum 0.9',
        'app_latency_seconds_count 5',
        'hox_partition_disk_bytes 1',
        'app_note{text="a \\"quoted\\" word"} 1',
      ].join('\n'),
    );
    await n1.client.call('reportNodeMetrics', {
      computer_guid: 'n1',
      metrics: {
        ...metrics,
        partitions: [
          { compute_partition_id: doc.compute_partition_id, instance_guid: doc.instance_guid, families },
          // The other partition hosts nothing: a report for it (a late one of a destroyed instance) is left out.
          { compute_partition_id: 'n1-p1', instance_guid: 'SOFTINST-gone', families },
        ],
      },
    });
    // n2 reports n1's partition as its own: the master labels by the reporting node, which hosts nothing there.
    await n2.client.call('reportNodeMetrics', {
      computer_guid: 'n2',
      metrics: {
        ...metrics,
        partitions: [{ compute_partition_id: doc.compute_partition_id, instance_guid: doc.instance_guid, families }],
      },
    });
    const t = (await scrape(m.url, m.adminToken)).text;
    const own = `node="n1",partition="${doc.compute_partition_id}",tree="shop",instance="shop",owner="${aliceId}"`;
    expect(valueOf(t, `app_requests_total{code="200",exported_instance="spoof",exported_job="x",${own}}`)).toBe(42);
    expect(t).toContain('# TYPE app_requests_total counter');
    expect(t).toContain('# HELP app_requests_total Requests "served".');
    expect(valueOf(t, `app_latency_seconds_bucket{le="+Inf",${own}}`)).toBe(5);
    expect(valueOf(t, `app_latency_seconds_count{${own}}`)).toBe(5);
    expect(valueOf(t, `app_note{text="a \\"quoted\\" word",${own}}`)).toBe(1);
    // One family, one TYPE line, whatever the number of partitions and nodes reporting it.
    expect(t.match(/^# TYPE app_requests_total /gm)).toHaveLength(1);
    expect(t.match(/^app_requests_total\{/gm)).toHaveLength(1);
    expect(t).not.toContain('SOFTINST-gone');
    expect(t).not.toContain('node="n2",partition');
    // The agent dropped the hox_ family; a node sending one anyway is not believed either.
    expect(families.map((f) => f.name)).not.toContain('hox_partition_disk_bytes');
    await n1.client.call('reportNodeMetrics', {
      computer_guid: 'n1',
      metrics: {
        ...metrics,
        partitions: [
          {
            compute_partition_id: doc.compute_partition_id,
            instance_guid: doc.instance_guid,
            families: [
              { name: 'hox_node_cpus', type: 'gauge', help: '', samples: [{ suffix: '', labels: {}, value: 99 }] },
            ],
          },
        ],
      },
    });
    expect((await scrape(m.url, m.adminToken)).text).not.toMatch(/^hox_node_cpus\{node="n1",partition=/m);
    // In shape: a label Prometheus would refuse is refused here.
    await expectError(
      n1.client.call('reportNodeMetrics', {
        computer_guid: 'n1',
        metrics: {
          ...metrics,
          partitions: [
            {
              compute_partition_id: doc.compute_partition_id,
              instance_guid: doc.instance_guid,
              families: [
                { name: 'x', type: 'gauge', help: '', samples: [{ suffix: '', labels: { 'a-b': '1' }, value: 1 }] },
              ],
            },
          ],
        },
      }),
      'HOX_BAD_REQUEST',
    );
  });
});

describe("the agent's reading of .hox/metrics.prom", () => {
  it('keeps what Prometheus would accept and says what it left out', () => {
    const { families, dropped } = parsePartitionMetrics(
      [
        '# TYPE ok gauge',
        'ok{a="1"} 1.5',
        'ok{a="2"} NaN',
        'bad_value{a="1"} soon',
        '# TYPE s summary',
        's{quantile="0.5"} 2',
        's_sum 4',
        's_count 2',
        'hox_api_requests_total 1',
      ].join('\n'),
    );
    expect(families).toEqual([
      {
        name: 'ok',
        type: 'gauge',
        help: '',
        samples: [
          { suffix: '', labels: { a: '1' }, value: 1.5 },
          { suffix: '', labels: { a: '2' }, value: 'NaN' },
        ],
      },
      {
        name: 's',
        type: 'summary',
        help: '',
        samples: [
          { suffix: '', labels: { quantile: '0.5' }, value: 2 },
          { suffix: '_sum', labels: {}, value: 4 },
          { suffix: '_count', labels: {}, value: 2 },
        ],
      },
    ]);
    expect(dropped.join('; ')).toMatch(/bad_value: a value that is not a number/);
    expect(dropped.join('; ')).toMatch(/hox_api_requests_total: the hox_ names are the platform's own/);
    expect(parsePartitionMetrics('a{b="c" 1').dropped[0]).toMatch(/^not the Prometheus text format/);
    const many = Array.from({ length: 2500 }, (_, i) => `m{i="${i}"} ${i}`).join('\n');
    const bounded = parsePartitionMetrics(many);
    expect(bounded.families[0]!.samples).toHaveLength(2000);
    expect(bounded.dropped).toEqual(['samples past the 2000 allowed']);
  });

  it('reads a fresh file of the partition only: not a link, not a stale one; each problem said once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hox-metrics-'));
    try {
      const path = join(dir, 'p0');
      mkdirSync(join(path, '.hox'), { recursive: true });
      let nowMs = Date.now();
      const logged: string[] = [];
      const reader = new PartitionMetricsReader({
        partitions: () => [{ partitionId: 'p0', path, uid: undefined, gid: undefined }],
        instanceOn: () => Promise.resolve('SOFTINST-a'),
        log: (line) => logged.push(line),
        clock: { nowMs: () => nowMs },
      });
      expect(await reader.read()).toEqual([]);
      writeFileSync(join(path, '.hox', METRICS_FILE), 'up_total 3\n');
      const [entry] = await reader.read();
      expect(entry).toEqual({
        compute_partition_id: 'p0',
        instance_guid: 'SOFTINST-a',
        families: [{ name: 'up_total', type: 'untyped', help: '', samples: [{ suffix: '', labels: {}, value: 3 }] }],
      });
      nowMs += 6 * 60_000;
      expect(await reader.read()).toEqual([]);
      expect(await reader.read()).toEqual([]);
      expect(logged.filter((l) => l.includes('not rewritten'))).toHaveLength(1);
      nowMs -= 6 * 60_000;
      rmSync(join(path, '.hox', METRICS_FILE));
      writeFileSync(join(dir, 'secret'), 'secret_value 1\n');
      symlinkSync(join(dir, 'secret'), join(path, '.hox', METRICS_FILE));
      expect(await reader.read()).toEqual([]);
      expect(logged.at(-1)).toBe('partition p0: .hox/metrics.prom is a symbolic link: refused');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("the agent's node metrics", () => {
  it('read the filesystem as df does, memory as the kernel counts it, and each filesystem once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hox-metrics-'));
    try {
      const metrics = await collectNodeMetrics([dir, join(dir, '.'), '/nonexistent/path']);
      expect(metrics.filesystems).toHaveLength(1);
      const [size, available] = execFileSync('df', ['-B1', '--output=size,avail', dir], { encoding: 'utf8' })
        .trim()
        .split('\n')[1]!
        .trim()
        .split(/\s+/)
        .map(Number);
      const fs = metrics.filesystems[0]!;
      expect(fs.size_bytes).toBe(size);
      expect(Math.abs(fs.available_bytes - available!)).toBeLessThan(64 * MiB); // other writers meanwhile
      expect(fs.free_bytes).toBeGreaterThanOrEqual(fs.available_bytes);
      expect(fs.files_free).toBeLessThanOrEqual(fs.files);
      expect(metrics.memory_total_bytes).toBe(totalmem());
      expect(metrics.memory_available_bytes).toBeGreaterThan(0);
      expect(metrics.memory_available_bytes).toBeLessThanOrEqual(metrics.memory_total_bytes);
      expect(metrics.cpu_seconds.idle + metrics.cpu_seconds.user).toBeGreaterThan(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
