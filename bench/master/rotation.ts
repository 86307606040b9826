/**
 * bench/master/rotation: does rotating the platform CA, or renewing the nodes' certificates, interrupt them?
 *
 *   npx tsx bench/master/rotation.ts [--nodes 20] [--phase-s 4] [--json]
 *
 * A real master over HTTPS (SQLite, in this process), `--nodes` nodes each holding its own client certificate
 * (mutual TLS) and the roots it trusted at the start, each syncing in a closed loop
 * (`listPartitionDocuments`). After a warm-up (until every node has synced once, its first handshake, and
 * one second more), five phases of `--phase-s` each: steady; the admin rotates the issuing CA; the
 * admin rotates the root (cross-signed); every node asks for a new certificate and presents it from its next
 * call; steady again. Printed per phase: syncs/s, failed calls, and the longest time any node went without a
 * successful sync (the write gap's equivalent for the control plane), against the steady phase's.
 */
import { parseArgs } from 'node:util';
import type { MasterClient } from '../../src/client/master-client.js';
import { addTestNode, startTestMaster } from '../../src/testing/test-master.js';
import { log, markdownTable, percentileOfSorted } from '../support/report.js';

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '20' },
    'phase-s': { type: 'string', default: '4' },
    json: { type: 'boolean', default: false },
  },
});
const NODES = Number(values.nodes);
const PHASE_MS = Number(values['phase-s']) * 1000;
if (!Number.isInteger(NODES) || NODES < 1) throw new Error(`--nodes must be a positive integer, not '${values.nodes}'`);
if (!Number.isFinite(PHASE_MS) || PHASE_MS < 500) throw new Error(`--phase-s must be at least 0.5`);

interface PhaseFigures {
  phase: string;
  syncs: number;
  perSecond: number;
  failures: number;
  firstFailure: string | null;
  /** Longest time, over all nodes, between two successful syncs that ended in this phase (ms). */
  longestGapMs: number;
  /** The same per node, median over nodes (ms). */
  medianNodeGapMs: number;
}

interface SimNode {
  id: string;
  client: MasterClient;
  lastOk: number;
  /** Per phase, the longest time between two successful syncs (ms). */
  gapsByPhase: Map<string, number>;
}

const master = await startTestMaster({ tls: true });
try {
  log(`master on ${master.url}; ${NODES} nodes with their own certificates`);
  const nodes: SimNode[] = [];
  for (let i = 0; i < NODES; i++) {
    const id = `rot-node-${i}`;
    const node = await addTestNode(master.admin, id, { partitions: 2 });
    const issued = await node.client.call('nodeCertificate', { computer_guid: id });
    node.client.useClientCertificate({ cert: issued.certificate, key: issued.key });
    nodes.push({ id, client: node.client, lastOk: 0, gapsByPhase: new Map<string, number>() });
  }

  let phase = 'steady';
  const counts = new Map<string, { syncs: number; failures: number; firstFailure: string | null }>();
  const count = (p: string) => {
    let c = counts.get(p);
    if (c === undefined) counts.set(p, (c = { syncs: 0, failures: 0, firstFailure: null }));
    return c;
  };
  let running = true;
  const loops = nodes.map(async (node) => {
    node.lastOk = performance.now();
    while (running) {
      try {
        await node.client.call('listPartitionDocuments', { computer_guid: node.id });
        const t = performance.now();
        const gap = t - node.lastOk;
        node.lastOk = t;
        node.gapsByPhase.set(phase, Math.max(node.gapsByPhase.get(phase) ?? 0, gap));
        count(phase).syncs += 1;
      } catch (error) {
        const c = count(phase);
        c.failures += 1;
        c.firstFailure ??= (error as Error).message.slice(0, 160);
      }
    }
  });

  const figures: PhaseFigures[] = [];
  const runPhase = async (name: string, action?: () => Promise<void>): Promise<void> => {
    phase = name;
    const t0 = performance.now();
    if (action !== undefined) await action();
    const left = PHASE_MS - (performance.now() - t0);
    if (left > 0) await new Promise((r) => setTimeout(r, left));
    const seconds = (performance.now() - t0) / 1000;
    const c = count(name);
    const gaps = nodes.map((n) => n.gapsByPhase.get(name) ?? 0).sort((a, b) => a - b);
    figures.push({
      phase: name,
      syncs: c.syncs,
      perSecond: c.syncs / seconds,
      failures: c.failures,
      firstFailure: c.firstFailure,
      longestGapMs: gaps.at(-1) ?? 0,
      medianNodeGapMs: percentileOfSorted(gaps, 0.5),
    });
    log(`${name}: ${c.syncs} syncs, ${c.failures} failed, longest gap ${Math.round(gaps.at(-1) ?? 0)} ms`);
  };

  // Every node's first calls open its connection (a full handshake): not part of any phase. Then one more second.
  phase = 'warm-up';
  const warmUntil = performance.now() + 60_000;
  while (nodes.some((n) => !n.gapsByPhase.has('warm-up')) && performance.now() < warmUntil)
    await new Promise((r) => setTimeout(r, 100));
  await new Promise((r) => setTimeout(r, 1000));
  await runPhase('steady');
  await runPhase('issuing CA rotated', async () => {
    await master.admin.call('rotatePki', { what: 'issuing-ca' });
  });
  await runPhase('root rotated', async () => {
    await master.admin.call('rotatePki', { what: 'root' });
  });
  await runPhase('node certificates renewed', async () => {
    await Promise.all(
      nodes.map(async (node) => {
        const issued = await node.client.call('nodeCertificate', { computer_guid: node.id });
        node.client.useClientCertificate({ cert: issued.certificate, key: issued.key });
      }),
    );
  });
  await runPhase('steady again');
  running = false;
  await Promise.all(loops);

  if (values.json) process.stdout.write(`${JSON.stringify({ nodes: NODES, phaseMs: PHASE_MS, figures }, null, 2)}\n`);
  else {
    const steady = figures[0]!;
    process.stdout.write(
      `bench/master/rotation — ${NODES} nodes (mutual TLS, each trusting the roots of the start), ${PHASE_MS / 1000} s per phase\n\n`,
    );
    process.stdout.write(
      `${markdownTable(
        ['phase', 'syncs/s', 'failed', 'longest gap ms', 'vs steady', 'median node gap ms', 'first failure'],
        figures.map((f) => [
          f.phase,
          f.perSecond.toFixed(0),
          String(f.failures),
          String(Math.round(f.longestGapMs)),
          `${(f.longestGapMs / Math.max(1, steady.longestGapMs)).toFixed(2)}×`,
          String(Math.round(f.medianNodeGapMs)),
          f.firstFailure ?? '',
        ]),
        1,
      )}\n`,
    );
  }
} finally {
  await master.stop();
}
