/**
 * The cost of the public endpoint: the same load on an app's web process
 * (its slot port), on its replica's Caddy and on the public endpoint (the
 * root's Caddy → the replica's Caddy → the app). The measurement is cut into
 * rounds, each running every target in turn, so that a change of background
 * load on a shared machine falls on every target alike; the ratio to direct
 * is taken within each round.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { percentileOfSorted } from '../support/report.js';
import { replicaEndpoints } from './app-probe.js';
import { publicUrl, type AppSpec, type MeasureContext } from './deploy-run.js';
import { loadFigures, underLoad, type LoadFigures, type LoadSample } from './under-load.js';

export const TARGETS = ['direct', 'replica proxy', 'public endpoint'] as const;
export type Target = (typeof TARGETS)[number];

export interface ThroughputRow {
  app: string;
  target: Target;
  url: string;
  /** All rounds pooled. */
  figures: LoadFigures;
  roundRequestsPerS: number[];
  /** Median over the rounds of this target's requests/s divided by direct's in the same round. */
  ratioToDirect: number;
}

const WARM_UP_MS = 500;

export async function throughput(
  ctx: MeasureContext,
  app: AppSpec,
  options: { durationS: number; rounds: number },
): Promise<ThroughputRow[]> {
  const ends = await replicaEndpoints(ctx.platform, app.name);
  const bases: Record<Target, string> = {
    direct: ends.direct,
    'replica proxy': ends.replicaProxy,
    'public endpoint': await publicUrl(ctx, app.name),
  };
  const samples = new Map<Target, LoadSample[]>(TARGETS.map((t) => [t, []]));
  const sliceMs = (options.durationS * 1000) / options.rounds;
  for (let round = 1; round <= options.rounds; round++) {
    for (const target of TARGETS) {
      const { sample } = await underLoad(
        `${bases[target]}${app.loadPath}`,
        { concurrency: ctx.concurrency, leadMs: 0, warmUpMs: WARM_UP_MS },
        () => sleep(sliceMs),
      );
      samples.get(target)!.push(sample);
    }
    ctx.log(`${app.name} throughput: round ${round}/${options.rounds} done`);
  }
  const rps = (s: LoadSample): number => s.result.ok / (s.result.durationMs / 1000);
  const direct = samples.get('direct')!;
  return TARGETS.map((target) => {
    const mine = samples.get(target)!;
    const ratios = mine.map((s, i) => rps(s) / rps(direct[i]!)).sort((a, b) => a - b);
    const row: ThroughputRow = {
      app: app.name,
      target,
      url: `${bases[target]}${app.loadPath}`,
      figures: loadFigures(mine),
      roundRequestsPerS: mine.map(rps),
      ratioToDirect: percentileOfSorted(ratios, 0.5),
    };
    ctx.log(
      `${app.name} ${target} (${row.url}): ${row.figures.requestsPerS.toFixed(0)} req/s, ` +
        `p50 ${row.figures.p50Ms.toFixed(1)} ms, p99 ${row.figures.p99Ms.toFixed(1)} ms, ` +
        `${row.figures.failures.length} failed, ${row.ratioToDirect.toFixed(2)}× direct`,
    );
    return row;
  });
}
