/** What every benchmark prints with: progress on stderr, CPU of the whole machine, percentiles, Markdown tables. */
import os from 'node:os';

/** Progress and notes go to stderr; stdout carries the results (or --json). */
export function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

/** Busy and total CPU time of every core since boot (ms); the difference of two samples gives the load. */
export function machineCpuTimes(): { busy: number; total: number } {
  let busy = 0;
  let total = 0;
  for (const cpu of os.cpus()) {
    const t = cpu.times;
    const all = t.user + t.nice + t.sys + t.idle + t.irq;
    total += all;
    busy += all - t.idle;
  }
  return { busy, total };
}

/** Nearest-rank percentile (`fraction` in 0..1) of an ascending-sorted array; NaN when empty. */
export function percentileOfSorted(sorted: ArrayLike<number>, fraction: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(fraction * sorted.length)));
  return sorted[rank - 1] ?? Number.NaN;
}

/** A Markdown table: the first `leftColumns` columns left-aligned, the others (figures) right-aligned. */
export function markdownTable(header: string[], rows: string[][], leftColumns: number): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    `| ${cells.map((c, i) => (i < leftColumns ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join(' | ')} |`;
  const sep = `|${widths.map((w, i) => (i < leftColumns ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
  return [line(header), sep, ...rows.map(line)].join('\n');
}
