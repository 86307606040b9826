/**
 * The master calls behind `hox db`: read a cluster back (its root's current
 * parameters come from `getInstanceTree`, which answers the root's instance
 * document), request it again with new parameters, and follow a tree through
 * the change feed until a condition on its published values holds.
 */
import { isNotReady, type ApiCaller, type RequestOf, type ResponseOf } from '../../client/route-call.js';
import { HoxError } from '../../shared/errors.js';
import { BANG_NOTE } from '../../shared/states.js';
import type { ClusterParameters } from './cluster-parameters.js';

export const HYPER_DB_RELEASE = 'hyper_db';
export const CLUSTER_TYPE = 'cluster';

export type InstanceDoc = Exclude<ResponseOf<'requestInstance'>, { status: 102 }>;
export type Tree = ResponseOf<'listTreeStatus'>['result_list'][number];
export type TreeInstance = Tree['instance_list'][number];

/** A cluster as read back from the master: its root instance document (with the requested parameters). */
export interface Cluster {
  name: string;
  root: InstanceDoc;
  parameters: ClusterParameters;
}

const isNotFound = (error: unknown): boolean =>
  error instanceof HoxError &&
  (error.code === 'HOX_INSTANCE_TREE_NOT_FOUND' || error.code === 'HOX_INSTANCE_NOT_FOUND');

/** The root document of tree `title`, or undefined when there is no such tree. */
export async function findTreeRoot(client: ApiCaller, title: string): Promise<InstanceDoc | undefined> {
  let answer: ResponseOf<'getInstanceTree'>;
  try {
    answer = await client.call('getInstanceTree', { title });
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
  if (isNotReady(answer)) throw new HoxError('HOX_CONFLICT', `'${title}' cannot be read yet: ${answer.message}`);
  return answer;
}

/** Throws unless `root` is the root of a hyper_db cluster. */
export function assertCluster(
  name: string,
  root: Pick<InstanceDoc, 'software_release_uri' | 'software_type' | 'shared'>,
): void {
  if (root.software_release_uri !== HYPER_DB_RELEASE || root.software_type !== CLUSTER_TYPE || root.shared)
    throw new HoxError(
      'HOX_CONFLICT',
      `'${name}' is not a hyper_db cluster (release '${root.software_release_uri}', software type '${root.software_type}'${root.shared ? ', shared' : ''})`,
    );
}

/** The cluster `name`, read back from the master; `cluster 'x' not found` when there is none. */
export async function loadCluster(client: ApiCaller, name: string): Promise<Cluster> {
  const root = await findTreeRoot(client, name);
  if (root === undefined) throw new HoxError('HOX_INSTANCE_TREE_NOT_FOUND', `cluster '${name}' not found`);
  assertCluster(name, root);
  if (root.state === 'destroyed') throw new HoxError('HOX_CONFLICT', `cluster '${name}' is being destroyed`);
  return { name, root, parameters: root.parameters };
}

/** SLA as the request body takes it (the document answers it as a free object). */
export function slaOf(doc: InstanceDoc): NonNullable<RequestOf<'requestInstance'>['sla_parameters']> {
  const out: Record<string, string | number> = {};
  for (const [k, v] of Object.entries(doc.sla_parameters))
    if (typeof v === 'string' || typeof v === 'number') out[k] = v;
  return out;
}

/**
 * Requests the cluster's root again with `parameters` (release, type, SLA and state unchanged) and
 * returns the master's answer; its `processing_timestamp` marks the request.
 */
export async function requestCluster(
  client: ApiCaller,
  cluster: Cluster,
  parameters: ClusterParameters,
): Promise<InstanceDoc> {
  const answer = await client.call('requestInstance', {
    title: cluster.name,
    software_release_uri: cluster.root.software_release_uri,
    software_type: cluster.root.software_type,
    parameters: { ...parameters },
    sla_parameters: slaOf(cluster.root),
    shared: false,
    state: cluster.root.state,
  });
  if (isNotReady(answer)) throw new HoxError('HOX_CONFLICT', `cluster '${cluster.name}': ${answer.message}`);
  return answer;
}

/**
 * Requests a cluster's root, started: a new one, or one that exists with these parameters. One the master cannot
 * place yet is accepted and waits (SlapOS's 102); when no node supplies hyper_db, the answer says how to supply it.
 */
export async function requestNewCluster(
  client: ApiCaller,
  name: string,
  parameters: ClusterParameters,
  slaParameters: NonNullable<RequestOf<'requestInstance'>['sla_parameters']>,
): Promise<ResponseOf<'requestInstance'>> {
  const answer = await client.call('requestInstance', {
    title: name,
    software_release_uri: HYPER_DB_RELEASE,
    software_type: CLUSTER_TYPE,
    parameters: { ...parameters },
    sla_parameters: slaParameters,
    shared: false,
    state: 'started',
  });
  if (isNotReady(answer) && /is not supplied|unknown release|nothing runs/.test(answer.message))
    return {
      ...answer,
      message: `${answer.message} (supply it: hox supply ${HYPER_DB_RELEASE}; the master then places the cluster)`,
    };
  return answer;
}

export function rootOf(tree: Tree): TreeInstance | undefined {
  return tree.instance_list.find((i) => i.instance_guid === tree.root_instance_guid);
}

/** Errors the tree's instances report (promise failures included), as `title: message`. */
export function treeProblems(tree: Tree): string[] {
  return tree.instance_list
    .filter(
      (i) =>
        i.access_status_message.startsWith('#error') &&
        !i.access_status_message.startsWith(`#error ${BANG_NOTE}`) &&
        i.reported_state !== null,
    )
    .map((i) => `${i.title}: ${i.access_status_message.replace(/^#error (while instan[ct]iating: )?/, '')}`);
}

export type FollowStep<T> = { done: T } | { progress: string };

export interface FollowOptions<T> {
  timeoutMs: number;
  /** What is awaited, for the timeout message: `timed out after 120 s waiting for <what>`. */
  waitingFor: string;
  /** Called with each new progress line (not again while it does not change). */
  progress?: (line: string) => void;
  /** Looks at the tree (undefined once it is gone) and says whether the wait is over. */
  check: (tree: Tree | undefined) => FollowStep<T>;
}

async function readTree(client: ApiCaller, title: string): Promise<Tree | undefined> {
  try {
    return (await client.call('listTreeStatus', { title })).result_list[0];
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

/** Follows tree `title` through the change feed until `check` says done, or times out naming what it waited for. */
export async function followTree<T>(client: ApiCaller, title: string, options: FollowOptions<T>): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  let cursor = (await client.call('waitForChange', {})).cursor;
  let last = '';
  for (;;) {
    const tree = await readTree(client, title);
    const step = options.check(tree);
    if ('done' in step) return step.done;
    if (step.progress !== last) options.progress?.(step.progress);
    last = step.progress;
    const remaining = deadline - Date.now();
    if (remaining <= 0)
      throw new HoxError(
        'HOX_CONFLICT',
        `timed out after ${Math.round(options.timeoutMs / 1000)} s waiting for ${options.waitingFor} (${last})`,
      );
    const wait = Math.min(remaining, 5000);
    // A tree that is gone cannot be watched by title: watch everything the caller may see.
    try {
      cursor = (
        await client.call(
          'waitForChange',
          tree === undefined
            ? { since: cursor, timeout_ms: wait }
            : { since: cursor, instance_tree_title: title, timeout_ms: wait },
        )
      ).cursor;
    } catch (error) {
      // Gone between the read and the watch (a destruction completing): read it again, now absent.
      if (!isNotFound(error)) throw error;
    }
  }
}

/** How the CLI acts on the cluster, recorded in `accept_data_loss.by`. */
export async function actorName(client: ApiCaller): Promise<string> {
  const me = await client.call('whoami', {});
  return me.subject === null ? me.kind : `${me.kind} ${me.subject}`;
}
