/**
 * An instance tree: what it is, its health, each instance (placement, states, promises, connection parameters,
 * secrets hidden until revealed), the panel of its kind (a hyper_db cluster, a hyper_edge app), its metrics and
 * its live log tail. The admin may see two owners' trees of one title: each is shown.
 */
import type { ResponseOf } from '../../client/route-call.js';
import { rootOf } from '../../cli/db/cluster-client.js';
import { hasUrlPassword, isSecretKey } from '../../cli/output.js';
import { MetricCharts } from '../chart.js';
import { useLive, useLoad } from '../live.js';
import { href } from '../route.js';
import { Age, Badge, Loading, Problem, Secret } from '../ui.js';
import { AppPanel } from './app-panel.js';
import { ClusterPanel } from './cluster-panel.js';
import { LogTail } from './log-tail.js';
import { treeKind } from './overview-view.js';

export type Tree = ResponseOf<'listTreeStatus'>['result_list'][number];
export type TreeInstance = Tree['instance_list'][number];

export function TreeView(props: { title: string }) {
  const trees = useLoad((api, options) => api.call('listTreeStatus', { title: props.title }, options), [props.title]);
  const list = trees.data?.result_list;
  return (
    <section>
      <h1 tabIndex={-1}>{props.title}</h1>
      <Problem text={trees.error} />
      {list === undefined ? (
        <Loading what="the instance tree" error={trees.error} />
      ) : list.length === 0 ? (
        <p class="error">No instance tree '{props.title}' (or not yours).</p>
      ) : (
        list.map((tree) => <OneTree key={tree.owner} tree={tree} several={list.length > 1} />)
      )}
    </section>
  );
}

function OneTree(props: { tree: Tree; several: boolean }) {
  const { tree } = props;
  const { session } = useLive();
  const root = rootOf(tree);
  const kind = treeKind(tree);
  const own = session.who.kind === 'user' || !props.several;
  return (
    <article aria-label={`${tree.title} of ${tree.owner}`}>
      {props.several ? <h2>Owner {tree.owner}</h2> : null}
      <dl class="facts">
        <dt>Kind</dt>
        <dd>{kind}</dd>
        <dt>Health</dt>
        <dd>
          <Badge value={tree.health} />
          {tree.health_message === null ? null : <span class="detail"> {tree.health_message}</span>}
        </dd>
        <dt>Owner</dt>
        <dd>{tree.owner}</dd>
        <dt>Reported</dt>
        <dd>
          <Age at={tree.reported_at} />
        </dd>
      </dl>
      {root !== undefined && kind === 'PostgreSQL cluster' && own ? <ClusterPanel tree={tree} root={root} /> : null}
      {root !== undefined && kind === 'app' && own ? <AppPanel tree={tree} root={root} /> : null}
      <section aria-label="Instances">
        <h2>Instances</h2>
        <InstanceTable tree={tree} />
      </section>
      <section aria-label="Connection parameters">
        <h2>Connection parameters</h2>
        {tree.instance_list.map((i) => (
          <Parameters key={i.instance_guid} instance={i} />
        ))}
      </section>
      {own ? (
        <>
          <section aria-label="Metrics">
            <h2>Metrics, last hour</h2>
            <MetricCharts target={tree.title} minutes={60} />
          </section>
          <section aria-label="Logs">
            <h2>Logs</h2>
            <LogTail title={tree.title} />
          </section>
        </>
      ) : null}
    </article>
  );
}

function promiseText(instance: TreeInstance): string {
  const promises = instance.promises;
  if (promises === null) return '—';
  const list = promises.promise_list;
  const failing = list.filter((p) => p.result !== 'ok').map((p) => p.name);
  return failing.length === 0
    ? `${list.length} kept`
    : `${failing.length} of ${list.length} failing: ${failing.join(', ')}`;
}

function InstanceTable(props: { tree: Tree }) {
  const { session } = useLive();
  const isAdmin = session.who.kind === 'admin';
  return (
    <div class="table-wrap">
      <table>
        <thead>
          <tr>
            <th scope="col">Instance</th>
            <th scope="col">Release</th>
            <th scope="col">Requested</th>
            <th scope="col">Reported</th>
            <th scope="col">Placement</th>
            <th scope="col">Promises</th>
            <th scope="col">Status</th>
          </tr>
        </thead>
        <tbody>
          {props.tree.instance_list.map((i) => (
            <tr key={i.instance_guid}>
              <th scope="row">
                {i.title}
                {i.shared ? ' (shared)' : ''}
              </th>
              <td>
                {i.software_release_uri} ({i.software_type})
              </td>
              <td>
                <Badge value={i.state} />
              </td>
              <td>
                <Badge value={i.reported_state} />
              </td>
              <td>
                {i.computer_guid === null ? (
                  <span class="muted">not placed</span>
                ) : isAdmin ? (
                  <a href={href({ view: 'node', id: i.computer_guid })}>
                    {i.computer_guid} / {i.compute_partition_id}
                  </a>
                ) : (
                  `${i.computer_guid} / ${i.compute_partition_id ?? ''}`
                )}
              </td>
              <td>{promiseText(i)}</td>
              <td class="wrap">{i.access_status_message}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function Parameters(props: { instance: TreeInstance }) {
  const entries = Object.entries(props.instance.connection_parameters);
  return (
    <details open={entries.length > 0 && entries.length <= 12}>
      <summary>
        {props.instance.title} <span class="muted">({entries.length} published)</span>
      </summary>
      {entries.length === 0 ? (
        <p class="muted">Nothing published yet.</p>
      ) : (
        <dl class="parameters">
          {entries.map(([key, value]) => {
            const text = typeof value === 'string' ? value : JSON.stringify(value);
            const secret = isSecretKey(key) || hasUrlPassword(text);
            return (
              <div key={key}>
                <dt>{key}</dt>
                <dd>{secret ? <Secret value={text} label={key} /> : <code class="wrap">{text}</code>}</dd>
              </div>
            );
          })}
        </dl>
      )}
    </details>
  );
}
