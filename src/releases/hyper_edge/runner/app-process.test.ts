import { readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { runToCompletion } from './app-process.js';

/** Live (not zombie) processes of a process group, from /proc. */
function liveMembers(group: number): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(pgrp) === group && state !== 'Z') found.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

describe('runToCompletion', () => {
  it('tells the process group as soon as the command starts, so a restarted runner can kill what a build left running', async () => {
    let group: number | undefined;
    const run = runToCompletion({
      label: 'build test',
      // A child of its own in the background, as npm's scripts have: killing the shell alone would leave it.
      command: 'sleep 30 & echo $! > /dev/null; sleep 30',
      cwd: '/tmp',
      env: { PATH: '/usr/bin:/bin' },
      log: () => {},
      timeoutMs: 60_000,
      onSpawn: (pid) => (group = pid),
    });
    expect(group).toBeGreaterThan(1);
    await sleep(200);
    expect(liveMembers(group!).length).toBe(3); // the shell and its two sleeps
    // What the next runner does with the recorded groups.
    process.kill(-group!, 'SIGKILL');
    await expect(run).rejects.toThrow(/killed by SIGKILL/);
    for (let i = 0; i < 50 && liveMembers(group!).length > 0; i++) await sleep(20);
    expect(liveMembers(group!)).toEqual([]);
  });
});
