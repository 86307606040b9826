/**
 * Watches every process's command line (`/proc/<pid>/cmdline`, readable by
 * every user on the machine) for strings that must never appear there:
 * secrets, tokens, artifact hashes. Tests start it before the code path
 * under test and assert it saw nothing.
 */
import { readFileSync, readdirSync } from 'node:fs';

export interface CommandLineWatch {
  /** Full scans of /proc done so far. */
  readonly scans: number;
  /** Stops scanning; the command lines (NULs as spaces) that contained a needle. */
  stop(): { scans: number; hits: string[] };
}

/** Scans /proc again and again (each on its own event loop turn) until stopped. */
export function watchCommandLines(needles: string[]): CommandLineWatch {
  const hits = new Set<string>();
  let scans = 0;
  let running = true;
  const scan = (): void => {
    if (!running) return;
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      let cmdline: string;
      try {
        cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      } catch {
        continue; // gone meanwhile
      }
      for (const needle of needles) if (cmdline.includes(needle)) hits.add(cmdline.replaceAll('\0', ' ').trim());
    }
    scans += 1;
    setImmediate(scan);
  };
  scan();
  return {
    get scans() {
      return scans;
    },
    stop() {
      running = false;
      return { scans, hits: [...hits] };
    },
  };
}
