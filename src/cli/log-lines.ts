/**
 * Log lines from several instances and services, merged by time in one
 * timestamp format (pure: no I/O). A line's time is the timestamp it starts
 * with (ISO 8601 or PostgreSQL's `2026-01-02 03:04:05.678 UTC`, optionally in
 * brackets) or the `ts` / `time` / `timestamp` field of a JSON line (Caddy,
 * pino). A line without one takes the time of the line before it in its log
 * (the first ones: of the first line with a time, else the log's last change),
 * so multi-line messages stay together.
 */

export interface LogChunk {
  instance: string;
  service: string;
  node: string;
  lines: string[];
  /** The log file's last change (when no line carries a time). */
  modifiedAtMs: number;
}

export interface MergedLine {
  /** ISO 8601 UTC when the line carries a time; null when inferred. */
  time: string | null;
  instance: string;
  service: string;
  node: string;
  /** The line without its leading timestamp (JSON lines whole). */
  text: string;
  /** A line without a time after one with a time in its log: a continuation (of a multi-line message). */
  continued: boolean;
  /** Sort key. */
  atMs: number;
}

const LEADING_TIME =
  /^\[?(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(?:[.,](\d{1,9}))?\s?(Z|UTC|GMT|[+-]\d{2}:?\d{2})?\]?(?:\s+|$)/;

/** The time a line starts with (or carries as JSON), and the line without a leading timestamp. */
export function parseLineTime(line: string): { atMs: number; text: string } | undefined {
  const m = LEADING_TIME.exec(line);
  if (m !== null) {
    const [, date, time, fraction, zone] = m;
    const ms = (fraction ?? '').padEnd(3, '0').slice(0, 3);
    // Without a zone the line is read as UTC (what the built-in releases' services print).
    const z =
      zone === undefined || zone === 'UTC' || zone === 'GMT'
        ? 'Z'
        : zone.length === 5
          ? `${zone.slice(0, 3)}:${zone.slice(3)}`
          : zone;
    const atMs = Date.parse(`${date}T${time}.${ms}${z}`);
    if (!Number.isNaN(atMs)) return { atMs, text: line.slice(m[0].length) };
  }
  if (line.startsWith('{')) {
    try {
      const o = JSON.parse(line) as Record<string, unknown>;
      for (const key of ['ts', 'time', 'timestamp']) {
        const v = o[key];
        let atMs: number | undefined;
        // Seconds (Caddy's `ts`) or milliseconds (pino's `time`) since the epoch, or a date string.
        if (typeof v === 'number' && Number.isFinite(v)) atMs = v < 1e11 ? v * 1000 : v;
        else if (typeof v === 'string') atMs = Date.parse(v);
        if (atMs !== undefined && !Number.isNaN(atMs) && atMs > 0) return { atMs: Math.round(atMs), text: line };
      }
    } catch {
      // not JSON after all
    }
  }
  return undefined;
}

/** Merges the chunks' lines by time; equal times keep their log's order, then the chunks' order. */
export function mergeLogLines(chunks: readonly LogChunk[]): MergedLine[] {
  const out: (MergedLine & { chunk: number; index: number })[] = [];
  chunks.forEach((c, chunk) => {
    const parsed = c.lines.map((line) => parseLineTime(line));
    let last = parsed.find((p) => p !== undefined)?.atMs ?? c.modifiedAtMs;
    let timed = false;
    c.lines.forEach((line, index) => {
      const p = parsed[index];
      if (p !== undefined) last = p.atMs;
      const continued = p === undefined && timed;
      if (p !== undefined) timed = true;
      out.push({
        time: p === undefined ? null : new Date(p.atMs).toISOString(),
        instance: c.instance,
        service: c.service,
        node: c.node,
        text: p === undefined ? line : p.text,
        continued,
        atMs: last,
        chunk,
        index,
      });
    });
  });
  out.sort((a, b) => a.atMs - b.atMs || a.chunk - b.chunk || a.index - b.index);
  return out.map(({ chunk: _chunk, index: _index, ...line }) => line);
}

/**
 * `2026-12-02T02:20:57.123Z hello/http | listening`. A continuation line gets blanks where the time goes,
 * so a multi-line message stays aligned; a line from a log that prints no times has no time column.
 */
export function formatLogLine(line: MergedLine): string {
  const time = line.time ?? (line.continued ? ' '.repeat(24) : null);
  return `${time === null ? '' : `${time} `}${line.instance}/${line.service} | ${line.text}`;
}
