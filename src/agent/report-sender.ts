/**
 * Sends a node's per-instance report (partition usage, promise results) in one call. When the master refuses it
 * for an entry naming an instance it no longer knows on this node (destroyed, its partition freed between our
 * reading of the state and the master's answer: `HOX_INSTANCE_NOT_FOUND` on `LIST.N.instance_guid`), that entry
 * is dropped and the others are sent again. Returns the entries the master took; any other error is thrown.
 */
import { HoxError } from '../shared/errors.js';

export async function sendDroppingStale<E>(
  entries: readonly E[],
  report: { list: string; what: string; send: (entries: E[]) => Promise<unknown>; log: (line: string) => void },
): Promise<E[]> {
  let left = [...entries];
  while (left.length > 0) {
    try {
      await report.send(left);
      return left;
    } catch (error) {
      const stale = staleEntry(error, report.list);
      if (stale === undefined) throw error;
      report.log(`${report.what}: ${(error as Error).message}; reporting the others`);
      left = left.filter((_, index) => index !== stale);
    }
  }
  return left;
}

/** The index of the entry the master refused as naming an instance it does not know on this node, if that is the error. */
function staleEntry(error: unknown, list: string): number | undefined {
  if (!(error instanceof HoxError) || error.code !== 'HOX_INSTANCE_NOT_FOUND') return undefined;
  const match = new RegExp(`^${list}\\.(\\d+)\\.instance_guid$`).exec(error.field ?? '');
  return match === null ? undefined : Number(match[1]);
}
