/**
 * An app's root parameters (hyper_edge, type `app`): the current release, the previous ones, the scale. Every
 * change is a new release number, never reused. What `hox app` and the web console both build their requests
 * from; pure but for {@link requestApp}'s one call.
 */
import { isNotReady, type ApiCaller } from '../../client/route-call.js';
import { HoxError } from '../../shared/errors.js';
import { findTreeRoot, type InstanceDoc } from '../db/cluster-client.js';

export const HYPER_EDGE_RELEASE = 'hyper_edge';
export const APP_TYPE = 'app';
export const HISTORY_LENGTH = 10;

/** One release as the root's parameters keep it. */
export interface AppRelease {
  id: number;
  artifact: string;
  env: Record<string, string>;
  description: string;
  created_at: string;
}

export interface AppParameters {
  release?: AppRelease;
  /** Config vars set before the first release (`hox app create --env`, `config set`): the first deploy takes them. */
  env?: Record<string, string>;
  manifest?: {
    web_scale?: number;
    secrets?: string[];
    postgres?: { name: string };
    cdn?: { domains: string[] };
  };
  scale?: number;
  /** Each replica's memory limit (`hox app scale --memory-mib`); absent: the node's. */
  memory_mib?: number;
  db_cluster?: { title: string; instance_guid: string };
  history?: AppRelease[];
  /** Releases that failed (newest first), kept for the release list: never rolled back to. */
  failed_releases?: FailedRelease[];
  /** Highest release number used so far, failed releases included: numbers are never reused. */
  last_release_id?: number;
}

/** A release that failed on a replica: its config is not kept (it may hold the mistake), only what happened. */
export interface FailedRelease {
  id: number;
  description: string;
  created_at: string;
  failed_at: string;
  replica: string;
  reason: string;
}

/** How many replicas the app asks for: its scale, else its manifest's, else one. */
export function expectedReplicas(parameters: AppParameters): number {
  return parameters.scale ?? parameters.manifest?.web_scale ?? 1;
}

/** Requests the app's root again with `parameters` (and `state`, when given). */
export async function requestApp(
  client: ApiCaller,
  name: string,
  parameters: AppParameters,
  state?: 'started' | 'stopped' | 'destroyed',
) {
  const answer = await client.call('requestInstance', {
    title: name,
    software_release_uri: HYPER_EDGE_RELEASE,
    software_type: APP_TYPE,
    parameters: { ...parameters },
    shared: false,
    ...(state === undefined ? {} : { state }),
  });
  if (isNotReady(answer)) throw new HoxError('HOX_CONFLICT', `app '${name}': ${answer.message}`);
  return answer;
}

/** The next release: a number above every one used so far, the current release pushed onto the history. */
export function nextRelease(
  current: AppParameters | undefined,
  fields: Omit<AppRelease, 'id' | 'created_at'>,
): {
  release: AppRelease;
  history: AppRelease[];
  last_release_id: number;
} {
  const known = [current?.release, ...(current?.history ?? [])].filter((r): r is AppRelease => r !== undefined);
  const id = Math.max(current?.last_release_id ?? 0, ...known.map((r) => r.id)) + 1;
  return {
    last_release_id: id,
    release: { id, ...fields, created_at: new Date().toISOString() },
    history: (current?.release === undefined ? [] : [current.release, ...(current.history ?? [])]).slice(
      0,
      HISTORY_LENGTH,
    ),
  };
}

/** An app as read back from the master: its root's document and parameters. */
export interface App {
  name: string;
  root: InstanceDoc;
  parameters: AppParameters;
}

/** The app `name`, or undefined when there is no such tree; refused when the tree is not a hyper_edge app. */
export async function loadApp(client: ApiCaller, name: string): Promise<App | undefined> {
  const root = await findTreeRoot(client, name);
  if (root === undefined) return undefined;
  if (root.software_release_uri !== HYPER_EDGE_RELEASE || root.software_type !== APP_TYPE || root.shared)
    throw new HoxError(
      'HOX_TITLE_CONFLICT',
      `'${name}' is an instance tree of release '${root.software_release_uri}', not a hyper_edge app`,
    );
  return { name, root, parameters: root.parameters };
}

/** The app `name`, refused when it does not exist or is being destroyed. */
export async function requireApp(client: ApiCaller, name: string): Promise<App> {
  const app = await loadApp(client, name);
  if (app === undefined)
    throw new HoxError(
      'HOX_INSTANCE_TREE_NOT_FOUND',
      `app '${name}' not found (create it with hox app create ${name}, or deploy it with hox app deploy ${name} DIR)`,
    );
  if (app.root.state === 'destroyed') throw new HoxError('HOX_CONFLICT', `app '${name}' is being destroyed`);
  return app;
}
