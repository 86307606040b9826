/**
 * Runs a suite once per store: SQLite (temp file) and PostgreSQL (a real
 * server started for the file, a fresh database per test).
 */
import { afterAll, afterEach, beforeAll, describe } from 'vitest';
import { createDatabase, startPostgres, type PostgresServer } from '../../src/testing/postgres-server.js';
import {
  startTestMaster,
  type StoreKind,
  type TestMaster,
  type TestMasterOptions,
} from '../../src/testing/test-master.js';

export interface StoreEnv {
  kind: StoreKind;
  /** A new master on a new, empty store. Stopped after the test. */
  startMaster(options?: Omit<TestMasterOptions, 'databaseUrl'>): Promise<TestMaster>;
  /** A new empty database on the shared server (postgres only). */
  newDatabaseUrl(): Promise<string>;
}

export const STORE_KINDS: StoreKind[] = ['sqlite', 'postgres'];

let dbCounter = 0;

export function describeEachStore(title: string, body: (env: StoreEnv) => void): void {
  for (const kind of STORE_KINDS) {
    describe(`${title} [${kind}]`, () => {
      let pg: PostgresServer | undefined;
      const started: TestMaster[] = [];
      beforeAll(async () => {
        if (kind === 'postgres') pg = await startPostgres();
      });
      afterEach(async () => {
        while (started.length > 0) await started.pop()!.stop();
      });
      afterAll(async () => {
        await pg?.stop();
      });
      const env: StoreEnv = {
        kind,
        async newDatabaseUrl() {
          if (pg === undefined) throw new Error('no PostgreSQL server for this store kind');
          dbCounter += 1;
          return createDatabase(pg, `t${process.pid}_${dbCounter}`);
        },
        async startMaster(options = {}) {
          const databaseUrl = kind === 'postgres' ? await env.newDatabaseUrl() : undefined;
          const m = await startTestMaster({ ...options, ...(databaseUrl === undefined ? {} : { databaseUrl }) });
          started.push(m);
          return m;
        },
      };
      body(env);
    });
  }
}
