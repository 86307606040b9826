/** The `.hox` watcher on a real directory: debounce, one reaction in flight, re-arming, unwatching. */
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PublicationWatcher } from './publication-watcher.js';

describe('PublicationWatcher', () => {
  let root: string;
  let dir: string;
  let watcher: PublicationWatcher;

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'hox-watch-'));
    dir = join(root, '.hox');
    mkdirSync(dir);
  });
  afterEach(async () => {
    await watcher.stop();
    rmSync(root, { recursive: true, force: true });
  });

  /** Counts reactions and the most that ever ran at once; each reaction takes `workMs`. */
  function recorder(workMs: number) {
    const record = { calls: 0, inFlight: 0, maxInFlight: 0 };
    const onChange = async (): Promise<void> => {
      record.calls += 1;
      record.inFlight += 1;
      record.maxInFlight = Math.max(record.maxInFlight, record.inFlight);
      await sleep(workMs);
      record.inFlight -= 1;
    };
    return { record, onChange };
  }

  async function until(what: string, probe: () => boolean, timeoutMs = 3000): Promise<number> {
    const started = Date.now();
    while (!probe()) {
      if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
      await sleep(5);
    }
    return Date.now() - started;
  }

  it('reacts to a change within the debounce, coalescing a burst into one reaction at a time', async () => {
    watcher = new PublicationWatcher({ debounceMs: 50, pollIntervalMs: 60_000 });
    const { record, onChange } = recorder(200);
    watcher.watch('p0', dir, onChange);
    await until('the reaction that follows arming', () => record.calls === 1);
    await until('it ends', () => record.inFlight === 0);

    writeFileSync(join(dir, 'publish.json'), '{"n":0}');
    // The poll is a minute away: a reaction before it is the watch's (how soon is a figure, not a bound).
    const latencyMs = await until('a reaction to the write', () => record.calls === 2, 30_000);
    console.log(`publication watcher reacted ${latencyMs} ms after the write (debounce 50 ms)`);
    // A burst while that reaction runs: never two at once, and exactly one more afterwards. Written at once: spaced
    // by sleeps, a loaded machine stretched the burst past the reaction, and it rightly reacted again.
    for (let n = 1; n <= 50; n += 1) writeFileSync(join(dir, 'publish.json'), `{"n":${n}}`);
    await until('the burst is handled', () => record.calls >= 3 && record.inFlight === 0);
    await sleep(400);
    expect(record.maxInFlight).toBe(1);
    expect(record.calls).toBeLessThanOrEqual(4);
    expect(record.inFlight).toBe(0);
  });

  it('re-arms when the directory is replaced, and when it appears again', async () => {
    watcher = new PublicationWatcher({ debounceMs: 20, pollIntervalMs: 60_000 });
    const { record, onChange } = recorder(0);
    watcher.watch('p0', dir, onChange);
    await until('the first reaction', () => record.calls === 1);

    // Replaced by another directory: the old one's events say so and the new one is watched.
    renameSync(dir, join(root, 'old'));
    mkdirSync(dir);
    await until('a reaction to the move', () => record.calls >= 2);
    await sleep(100);
    const before = record.calls;
    writeFileSync(join(dir, 'publish.json'), '{}');
    await until('a reaction in the new directory', () => record.calls > before);
  });

  it('polls when no event comes, and stops reacting once unwatched', async () => {
    watcher = new PublicationWatcher({ debounceMs: 10, pollIntervalMs: 100 });
    const { record, onChange } = recorder(0);
    watcher.watch('p0', join(root, 'missing'), onChange);
    await until('polls without a directory', () => record.calls >= 3, 2000);
    mkdirSync(join(root, 'missing'));
    await sleep(250); // a poll arms it
    const armed = record.calls;
    writeFileSync(join(root, 'missing', 'publish.json'), '{}');
    await until('an event from the directory that appeared', () => record.calls > armed);

    await watcher.unwatch('p0');
    expect(watcher.isWatching('p0')).toBe(false);
    const after = record.calls;
    writeFileSync(join(root, 'missing', 'publish.json'), '{"again":true}');
    await sleep(300);
    expect(record.calls).toBe(after);
  });
});
