/**
 * hyper_db's profiles are pure: what they let through is checked here without a cluster (the attack tests
 * on a real one are in test/hyperdb-tenants.test.ts).
 */
import { Ajv } from 'ajv';
import { beforeAll, describe, expect, it } from 'vitest';
import type { ProfileInput, SharedInstanceEntry } from '../../release-kit/types.js';
import { createLocalCa, type LocalCa } from '../../shared/pki/local-ca.js';
import release from './release.js';

let ca: LocalCa;
beforeAll(async () => {
  ca = await createLocalCa('hyper_db cluster CA', 'hyper_db');
});

function input(type: string, parameters: Record<string, unknown>, shared: SharedInstanceEntry[] = []): ProfileInput {
  return {
    parameters,
    instance_title: type,
    root_instance_title: 'db',
    slap_computer_id: 'n1',
    slap_computer_partition_id: 'p0',
    slap_software_type: type,
    slap_software_release_url: 'hyper_db',
    slave_instance_list: shared,
    ip_list: [],
    timestamp: 1,
    state: 'started',
    partition: { path: '/nonexistent/p0', ip: '127.0.0.2', portBase: 20000, portCount: 50, user: 'u' },
    softwarePath: '/nonexistent/hyper_db',
    tools: { node: process.execPath },
    requested: {},
    secret: (name: string) => `secret-of-${name}-`.padEnd(43, 'x'),
    certificateAuthority: (name: string) => {
      if (name !== 'cluster-ca') throw new Error(`undeclared CA ${name}`);
      return ca;
    },
  };
}

const entry = (reference: string, database: string): SharedInstanceEntry => ({
  slave_reference: reference,
  slave_title: reference,
  slap_software_type: 'cluster',
  parameters: { database },
  state: 'started',
});

describe('hyper_db profiles', () => {
  const { cluster, member } = release.softwareTypes;

  it('a member refuses settings outside the allow-list (archive_command runs a shell) and values that could break out', () => {
    const base = { cluster_secret: 's'.repeat(43), name: 'member-1' };
    expect(() => member!.profile(input('member', { ...base, settings: { archive_command: 'sh -c id' } }))).toThrow(
      /'archive_command' are not allowed/,
    );
    expect(() =>
      member!.profile(input('member', { ...base, settings: { work_mem: "1MB'\narchive_command='id" } })),
    ).toThrow(/'work_mem' are not allowed/);
    const plan = member!.profile(input('member', { ...base, settings: { work_mem: '8MB', max_connections: 50 } }));
    const config = JSON.parse(plan.files![0]!.content) as { settings: Record<string, unknown> };
    expect(config.settings).toEqual({ work_mem: '8MB', max_connections: 50 });
  });

  it("the cluster's schema refuses unknown settings and values with quotes or newlines", () => {
    const validate = new Ajv({ strict: false }).compile(cluster!.parameters);
    expect(validate({ settings: { work_mem: '64MB' } })).toBe(true);
    expect(validate({ settings: { archive_command: 'id' } })).toBe(false);
    expect(validate({ settings: { work_mem: "1'\narchive_command='id'" } })).toBe(false);
  });

  it('a database name goes to the shared instance that asked first, whatever the references sort like', () => {
    // 'A…' sorts before 'Z…': the older sorting let the later request win.
    const plan = cluster!.profile(input('cluster', {}, [entry('Z-first', 'crm'), entry('A-second', 'crm')]));
    expect(plan.publishShared?.['Z-first']?.dbname).toBe('crm');
    expect(plan.publishShared?.['A-second']).toEqual({
      error: "database 'crm' is taken: it belongs to another shared instance of this cluster; choose another name",
    });
    const router = JSON.parse(plan.files!.find((f) => f.path === 'router.json')!.content) as {
      databases: { owner: string; name: string }[];
    };
    expect(router.databases.map((d) => [d.name, d.owner])).toEqual([['crm', 'Z-first']]);
  });

  it('names PostgreSQL reserves are refused; URLs require TLS verified against the published CA', () => {
    const plan = cluster!.profile(
      input('cluster', {}, [entry('r1', 'pg_stat'), entry('r2', 'template0'), entry('r3', 'app')]),
    );
    expect(plan.publishShared?.r1?.error).toMatch(/reserved/);
    expect(plan.publishShared?.r2?.error).toMatch(/reserved/);
    for (const key of ['database_url', 'rw_url', 'ro_url'])
      expect(String(plan.publishShared?.r3?.[key])).toMatch(
        /sslmode=verify-full&sslrootcert=hyper_db-ca-[0-9a-f]{16}\.crt$/,
      );
    expect(plan.publish?.client_tls).toBe('required');
  });
});
