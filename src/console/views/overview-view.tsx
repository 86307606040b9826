/** The overview: compute nodes (the admin's view), instance trees with their health, and open alerts. */
import { rootOf } from '../../cli/db/cluster-client.js';
import type { ResponseOf } from '../../client/route-call.js';
import { useLive, useLoad } from '../live.js';
import { href } from '../route.js';
import { Age, Badge, Loading, Problem } from '../ui.js';
import { AlertTable } from './alerts-view.js';

type Tree = ResponseOf<'listTreeStatus'>['result_list'][number];

export function OverviewView() {
  const { session } = useLive();
  const isAdmin = session.who.kind === 'admin';
  const trees = useLoad((api, options) => api.call('listTreeStatus', {}, options), []);
  const alerts = useLoad((api, options) => api.call('listAlerts', {}, options), []);
  const nodes = useLoad(
    async (api, options) => (isAdmin ? (await api.call('listNodes', {}, options)).result_list : null),
    [isAdmin],
  );
  return (
    <section>
      <h1 tabIndex={-1}>Overview</h1>
      <Summary trees={trees.data?.result_list} alerts={alerts.data?.result_list.length} />
      {isAdmin ? (
        <section aria-labelledby="nodes-heading">
          <h2 id="nodes-heading">Compute nodes</h2>
          <Problem text={nodes.error} />
          {nodes.data === undefined ? (
            <Loading what="compute nodes" error={nodes.error} />
          ) : (
            <NodeTable nodes={nodes.data ?? []} />
          )}
        </section>
      ) : null}
      <section aria-labelledby="trees-heading">
        <h2 id="trees-heading">Instance trees</h2>
        <Problem text={trees.error} />
        {trees.data === undefined ? (
          <Loading what="instance trees" error={trees.error} />
        ) : (
          <TreeTable trees={trees.data.result_list} showOwner={isAdmin} />
        )}
      </section>
      <section aria-labelledby="alerts-heading">
        <h2 id="alerts-heading">Open alerts</h2>
        <Problem text={alerts.error} />
        {alerts.data === undefined ? (
          <Loading what="alerts" error={alerts.error} />
        ) : (
          <AlertTable alerts={alerts.data.result_list} />
        )}
      </section>
    </section>
  );
}

function Summary(props: { trees: Tree[] | undefined; alerts: number | undefined }) {
  if (props.trees === undefined) return null;
  const count = (health: string) => props.trees!.filter((t) => t.health === health).length;
  return (
    <ul class="summary" aria-label="Summary">
      <li>
        <strong>{props.trees.length}</strong> instance trees
      </li>
      <li>
        <strong>{count('ok')}</strong> ok
      </li>
      <li class={count('error') > 0 ? 'tone-bad' : undefined}>
        <strong>{count('error')}</strong> in error
      </li>
      <li>
        <strong>{count('pending')}</strong> pending
      </li>
      <li class={(props.alerts ?? 0) > 0 ? 'tone-bad' : undefined}>
        <strong>{props.alerts ?? '…'}</strong> open alerts
      </li>
    </ul>
  );
}

type Node = ResponseOf<'listNodes'>['result_list'][number];

function NodeTable(props: { nodes: Node[] }) {
  if (props.nodes.length === 0) return <p class="muted">No compute node yet: add one with hox node.</p>;
  return (
    <div class="table-wrap">
      <table>
        <thead>
          <tr>
            <th scope="col">Node</th>
            <th scope="col">Status</th>
            <th scope="col">Last contact</th>
            <th scope="col">Partitions free</th>
            <th scope="col">Software</th>
          </tr>
        </thead>
        <tbody>
          {props.nodes.map((n) => (
            <tr key={n.computer_guid}>
              <th scope="row">
                <a href={href({ view: 'node', id: n.computer_guid })}>{n.title || n.computer_guid}</a>
              </th>
              <td>{n.status_text}</td>
              <td>
                <Age at={n.last_contact_at} />
              </td>
              <td>
                {n.free_partition_count} / {n.partition_count}
              </td>
              <td>{n.software_installation_count}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** What a tree is, from its root instance: a hyper_db cluster, a hyper_edge app, or its release and type. */
export function treeKind(tree: Tree): string {
  const root = rootOf(tree);
  if (root === undefined) return '';
  if (root.software_release_uri === 'hyper_db' && root.software_type === 'cluster') return 'PostgreSQL cluster';
  if (root.software_release_uri === 'hyper_edge' && root.software_type === 'app') return 'app';
  return `${root.software_release_uri} (${root.software_type})`;
}

function TreeTable(props: { trees: Tree[]; showOwner: boolean }) {
  if (props.trees.length === 0) return <p class="muted">No instance tree yet: request one with hox request.</p>;
  return (
    <div class="table-wrap">
      <table>
        <thead>
          <tr>
            <th scope="col">Tree</th>
            <th scope="col">Kind</th>
            <th scope="col">Health</th>
            <th scope="col">Instances</th>
            {props.showOwner ? <th scope="col">Owner</th> : null}
            <th scope="col">Reported</th>
          </tr>
        </thead>
        <tbody>
          {props.trees.map((t) => (
            <tr key={`${t.owner}/${t.title}`}>
              <th scope="row">
                <a href={href({ view: 'tree', title: t.title })}>{t.title}</a>
              </th>
              <td>{treeKind(t)}</td>
              <td>
                <Badge value={t.health} />
                {t.health_message === null ? null : <span class="detail"> {t.health_message}</span>}
              </td>
              <td>{t.instance_list.length}</td>
              {props.showOwner ? <td>{t.owner}</td> : null}
              <td>
                <Age at={t.reported_at} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
