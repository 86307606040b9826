/** `hox.get.v1.change`: authenticate, work out what the caller may watch, then wait outside any transaction. */
import type { Body } from '../../protocol/schemas.js';
import type { Clock } from '../../shared/clock.js';
import { HoxError } from '../../shared/errors.js';
import type { Store } from '../../store/store.js';
import type { ChangeFeed, ChangeFilter, WaitResult } from '../change-feed.js';
import { ADMIN_OWNER_ID, authenticate, assertNodeAccess, describePrincipal } from '../principal.js';

export const DEFAULT_WAIT_MS = 25_000;

export async function waitForChange(
  options: { store: Store; feed: ChangeFeed; clock: Clock; adminTokenHash: string },
  token: string,
  body: Body<'change'>,
  signal: AbortSignal,
): Promise<WaitResult> {
  const filter = await options.store.transaction(async (tx): Promise<ChangeFilter> => {
    const p = await authenticate(tx, token, options.adminTokenHash, options.clock);
    if (body.computer_guid !== undefined) {
      assertNodeAccess(p, body.computer_guid);
      return { nodeId: body.computer_guid };
    }
    switch (p.kind) {
      case 'node':
        return { nodeId: p.nodeId };
      case 'instance': {
        const self = await tx.getInstance(p.instanceId);
        return { treeIds: self === undefined ? [] : [self.treeId] };
      }
      case 'admin':
      case 'user': {
        const trees = await tx.listTrees(
          p.kind === 'user' ? p.userId : body.instance_tree_title === undefined ? undefined : ADMIN_OWNER_ID,
        );
        if (body.instance_tree_title !== undefined) {
          const tree = trees.find((t) => t.title === body.instance_tree_title);
          if (tree === undefined)
            throw new HoxError('HOX_INSTANCE_TREE_NOT_FOUND', `instance tree '${body.instance_tree_title}' not found`);
          return { treeIds: [tree.id] };
        }
        // The admin without a filter watches everything.
        return p.kind === 'admin' ? {} : { treeIds: trees.map((t) => t.id) };
      }
      case 'registration':
        throw new HoxError('HOX_FORBIDDEN', `${describePrincipal(p)} may not watch changes`);
    }
  });
  return options.feed.wait(filter, body.since, body.timeout_ms ?? DEFAULT_WAIT_MS, signal);
}
