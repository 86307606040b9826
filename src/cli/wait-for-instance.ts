/**
 * `--wait`: follows an instance tree through the change feed and says what
 * happens — allocated, installing, starting, promises, published — until its
 * root is converged (connection parameters published) or fails.
 */
import type { MasterClient, ResponseOf } from '../client/master-client.js';
import { HoxError } from '../shared/errors.js';
import { readableProblem } from './readable-problem.js';

type Tree = ResponseOf<'listTreeStatus'>['result_list'][number];
type TreeInstance = Tree['instance_list'][number];

export interface WaitOutcome {
  tree: Tree;
  root: TreeInstance;
}

function rootOf(tree: Tree): TreeInstance | undefined {
  return tree.instance_list.find((i) => i.instance_guid === tree.root_instance_guid);
}

function stage(root: TreeInstance, software: string | undefined, fresh: boolean): string {
  if (root.computer_guid === null)
    return root.waiting_for ?? (root.shared ? 'waiting for a host' : 'waiting for a partition');
  const where = root.shared
    ? `hosted on ${root.computer_guid}`
    : `allocated ${root.computer_guid}/${root.compute_partition_id ?? '?'}`;
  if (software === 'building') return `${where}; installing ${root.software_release_uri}`;
  if (root.reported_state === null && root.status_at === null) return `${where}; starting`;
  // What it reported before this request (or before a restart) is not news: say what is awaited instead.
  if (!fresh) return `${where}; waiting for its node to process this request`;
  // Earlier masters spelled it 'instanciating': a status stored then may still say so.
  if (/^#error while instan[ct]iating: promise/.test(root.access_status_message))
    return `${where}; not ready yet: ${readableProblem(root.access_status_message.replace(/^#error /, ''))}`;
  if (root.reported_state === null) return `${where}; starting`;
  if (Object.keys(root.connection_parameters).length === 0 && root.state === 'started')
    return `${where}; ${root.reported_state}, publishing`;
  return `${where}; ${root.reported_state}`;
}

/** Waits until the tree's root is converged; reports each new stage through `progress`. */
export async function waitForTree(
  client: MasterClient,
  title: string,
  options: {
    timeoutMs: number;
    /** Master time (ms) of the request: only reports made after it count (its processing_timestamp / 1000). */
    notBeforeMs: number;
    progress: (line: string) => void;
    isAdmin: boolean;
  },
): Promise<WaitOutcome> {
  const deadline = Date.now() + options.timeoutMs;
  let cursor = (await client.call('waitForChange', {})).cursor;
  let last = '';
  let lastError = '';
  for (let round = 0; round < 100_000; round += 1) {
    const tree = (await client.call('listTreeStatus', { title })).result_list[0];
    if (tree === undefined) throw new HoxError('HOX_INSTANCE_TREE_NOT_FOUND', `instance tree '${title}' not found`);
    const root = rootOf(tree);
    if (root === undefined)
      throw new HoxError('HOX_INSTANCE_NOT_FOUND', `instance tree '${title}' has no root instance`);
    let software: string | undefined;
    if (options.isAdmin && root.computer_guid !== null) {
      const list = (await client.call('listSoftwareStatus', { computer_guid: root.computer_guid })).result_list;
      const s = list.find((x) => x.software_release_uri === root.software_release_uri);
      software = s?.reported_state ?? undefined;
      if (s?.reported_state === 'error')
        throw new HoxError(
          'HOX_CONFLICT',
          `installing ${root.software_release_uri} on ${root.computer_guid} failed: ${s.error_message ?? ''}`,
        );
    }
    const fresh = root.status_at !== null && Date.parse(root.status_at) >= options.notBeforeMs;
    const now = stage(root, software, fresh);
    if (now !== last) options.progress(now);
    last = now;
    const error = root.access_status_message.startsWith('#error while') ? root.access_status_message.slice(7) : '';
    const isPromise = /^while instan[ct]iating: promise/.test(error);
    if (error !== '' && !isPromise && fresh) {
      // Parameters the release's schema rejects, or a software type it lacks, are bad input, like any other.
      // `fresh` makes it this request's answer: the node reports an error again for each new request (a new
      // processing_timestamp) even when it fails the same way, so an earlier failure never fails a new request
      // and a new request failing like the previous one is not left waiting for its timeout.
      const badParameters = /^while instan[ct]iating: (parameters[.:]|software type ')/.test(error);
      throw new HoxError(badParameters ? 'HOX_BAD_REQUEST' : 'HOX_CONFLICT', `node reported: ${error}`);
    }
    lastError = error;
    const published = Object.keys(root.connection_parameters).length > 0;
    const converged = root.shared
      ? published || root.state !== 'started'
      : fresh && root.reported_state === root.state && error === '' && (root.state !== 'started' || published);
    if (converged) return { tree, root };
    const remaining = deadline - Date.now();
    if (remaining <= 0)
      throw new HoxError(
        'HOX_CONFLICT',
        `timed out after ${Math.round(options.timeoutMs / 1000)} s (${lastError || last})`,
      );
    cursor = (
      await client.call('waitForChange', {
        since: cursor,
        instance_tree_title: title,
        timeout_ms: Math.min(remaining, 5000),
      })
    ).cursor;
  }
  throw new HoxError('HOX_INTERNAL', 'wait loop exhausted');
}
