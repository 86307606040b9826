/** How `hox show` says an instance: promises one by one, parameters and SLA, secrets masked at any depth. */
import { describe, expect, it } from 'vitest';
import {
  formatInstance,
  formatPromises,
  formatSla,
  maskInstance,
  maskParameters,
  type InstanceStatusView,
} from './instance-view.js';

const base: InstanceStatusView = {
  instance_guid: 'SOFTINST-abc',
  title: 'web',
  requester_guid: null,
  shared: false,
  software_release_uri: 'demo',
  software_type: 'default',
  state: 'started',
  reported_state: 'started',
  access_status_message: '#access Instance correctly started',
  status_at: '2025-03-01T12:00:00.000Z',
  computer_guid: 'n1',
  compute_partition_id: 'p0',
  host_instance_guid: null,
  waiting_for: null,
  processing_timestamp: 1,
  connection_parameters: { url: 'http://127.0.1.1:8080/', admin_password: 'hunter2' },
  parameters: { greeting: 'hi', db: { url: 'postgres://app:s3cret@127.0.0.1/app', api_key: 'k-123' } },
  sla_parameters: {},
  promises: null,
  partition_usage: null,
};

const promise = (name: string, result: 'ok' | 'failed' | 'never_run', message: string | null = null) => ({
  name,
  result,
  message: result === 'never_run' ? null : (message ?? 'tcp 127.0.1.1:8080: connected'),
  checked_at: result === 'never_run' ? null : '2025-03-01T12:00:00.000Z',
  age_ms: result === 'never_run' ? null : 5_000,
});

describe('formatPromises', () => {
  it('counts the passing ones and gives one line per failing promise with its message and age', () => {
    const lines = formatPromises({
      ...base,
      promises: {
        reported_at: '2025-03-01T12:00:00.000Z',
        reported_age_ms: 12_000,
        promise_list: [
          promise('port', 'ok'),
          promise('http', 'failed', 'http http://127.0.1.1:8080/: status 500, expected 2xx or 3xx'),
          promise('db', 'ok'),
        ],
      },
    });
    expect(lines).toEqual([
      'promises: 2/3 ok (reported 12 s ago)',
      '  failed http: http http://127.0.1.1:8080/: status 500, expected 2xx or 3xx (checked 5 s ago)',
    ]);
  });

  it('says which promises have never run, when none runs, and when the node has not reported yet', () => {
    const report = (list: ReturnType<typeof promise>[]) => ({
      reported_at: '2025-03-01T12:00:00.000Z',
      reported_age_ms: 0,
      promise_list: list,
    });
    expect(
      formatPromises({ ...base, promises: report([promise('port', 'ok'), promise('http', 'never_run')]) }),
    ).toEqual(['promises: 1/2 ok, 1 never run yet (reported 0 s ago)', '  http: never run yet']);
    expect(formatPromises({ ...base, state: 'stopped', promises: report([]) })).toEqual([
      'promises: none running (instance stopped) (reported 0 s ago)',
    ]);
    expect(formatPromises({ ...base, promises: report([]) })).toEqual(['promises: none running (reported 0 s ago)']);
    expect(formatPromises(base)).toEqual(['promises: not reported by the node yet']);
    // A shared instance has no partition: its host runs the promises.
    expect(formatPromises({ ...base, compute_partition_id: null })).toEqual([]);
  });
});

describe('maskParameters', () => {
  it('masks secret-looking keys, URL passwords and every environment value, at any depth', () => {
    const masked = maskParameters(
      {
        name: 'app',
        cluster_secret: 'x'.repeat(43),
        env: { GREETING: 'hello', ADMIN_PASSWORD: 'generated-1' },
        release: { id: 3, env: { API: 'sk-live' } },
        peers: [{ host: '127.0.1.2', token: 't-1' }, 'https://u:p4ss@example.org/'],
        db: { url: 'postgres://app:s3cret@127.0.0.1/app' },
      },
      false,
    );
    expect(masked).toEqual({
      name: 'app',
      cluster_secret: '••••••',
      env: { GREETING: '••••••', ADMIN_PASSWORD: '••••••' },
      release: { id: 3, env: { API: '••••••' } },
      peers: [{ host: '127.0.1.2', token: '••••••' }, 'https://u:••••••@example.org/'],
      db: { url: 'postgres://app:••••••@127.0.0.1/app' },
    });
    const text = JSON.stringify(masked);
    for (const secret of ['generated-1', 'sk-live', 't-1', 'p4ss', 's3cret', 'x'.repeat(43)])
      expect(text).not.toContain(secret);
  });

  it('shows everything with --reveal', () => {
    const params = { env: { A: '1' }, password: 'p' };
    expect(maskParameters(params, true)).toEqual(params);
  });
});

describe('formatInstance', () => {
  it('prints promises, SLA, the parameters and the connection parameters, masked', () => {
    const lines = formatInstance(
      maskInstance(
        {
          ...base,
          sla_parameters: { computer_guid: 'n1' },
          promises: {
            reported_at: '2025-03-01T12:00:00.000Z',
            reported_age_ms: 3_000,
            promise_list: [promise('port', 'ok')],
          },
        },
        false,
      ),
    );
    expect(lines).toEqual([
      '- web [default] SOFTINST-abc',
      '    release:  demo',
      '    where:    n1/p0',
      '    state:    requested started, reported started',
      '    status:   #access Instance correctly started',
      '    promises: 1/1 ok (reported 3 s ago)',
      '    limits:   not reported by the node yet',
      '    sla:      computer_guid=n1',
      '    parameters:',
      '      greeting = hi',
      '      db = {"url":"postgres://app:••••••@127.0.0.1/app","api_key":"••••••"}',
      '    connection parameters:',
      '      url = http://127.0.1.1:8080/',
      '      admin_password = ••••••',
    ]);
  });

  it('indents a child instance and says when it was requested without parameters', () => {
    const lines = formatInstance({
      ...base,
      requester_guid: 'SOFTINST-root',
      parameters: {},
      connection_parameters: {},
    });
    expect(lines).toContain('      parameters: none');
    expect(lines.some((l) => l.includes('connection parameters'))).toBe(false);
    expect(formatSla({})).toBeNull();
  });
});
