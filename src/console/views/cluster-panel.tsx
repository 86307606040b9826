/**
 * A hyper_db cluster, as `hox db status` reads it (the same readers: src/cli/db/cluster-view.ts): its verdict,
 * endpoint, members with their roles and lag, the events timeline and the backups; a switchover, asked for with
 * a confirmation and followed until the keepers say how it went, as `hox db switchover` does.
 */
import { useState } from 'preact/hooks';
import { loadCluster, requestCluster } from '../../cli/db/cluster-client.js';
import { withSwitchover } from '../../cli/db/cluster-parameters.js';
import { clusterVerdict, isReadyMember, readClusterView, type ClusterView } from '../../cli/db/cluster-view.js';
import { planRestore, requestRestore } from '../../cli/db/restore-plan.js';
import { isNotReady } from '../../client/route-call.js';
import { useLive } from '../live.js';
import { href } from '../route.js';
import { Age, Badge, ConfirmButton } from '../ui.js';
import { formatValue } from '../chart.js';
import type { Tree, TreeInstance } from './tree-view.js';

export function ClusterPanel(props: { tree: Tree; root: TreeInstance }) {
  const view = readClusterView(props.root.connection_parameters);
  const verdict = clusterVerdict(view, {
    health: props.tree.health,
    healthMessage: props.tree.health_message,
    reportedAgeMs: props.tree.reported_age_ms,
  });
  return (
    <section aria-labelledby="cluster-heading">
      <h2 id="cluster-heading">PostgreSQL cluster</h2>
      <dl class="facts">
        <dt>Verdict</dt>
        <dd>
          <Badge value={verdict.health} />
          {verdict.problem === null ? null : <span class="detail"> {verdict.problem}</span>}
        </dd>
        <dt>Primary</dt>
        <dd>{view.primary ?? (view.runtime ? 'none' : 'not published yet')}</dd>
        <dt>Endpoint</dt>
        <dd>
          {view.rwHost === null ? '—' : `${view.rwHost}:${view.rwPort ?? '?'} (read-only port ${view.roPort ?? '?'})`}
        </dd>
        <dt>Sync mode</dt>
        <dd>
          {view.syncMode ?? '—'}
          {view.paused === true ? ' · paused (no automatic failover)' : ''}
        </dd>
      </dl>
      <MemberTable view={view} />
      <Switchover tree={props.tree} view={view} />
      <Events view={view} />
      <Backups view={view} />
      <RestoreForm tree={props.tree} view={view} />
    </section>
  );
}

function MemberTable(props: { view: ClusterView }) {
  const { view } = props;
  return (
    <div class="table-wrap">
      <table>
        <caption>Members</caption>
        <thead>
          <tr>
            <th scope="col">Member</th>
            <th scope="col">Role</th>
            <th scope="col">Ready</th>
            <th scope="col">Lag</th>
            <th scope="col">Term / timeline</th>
            <th scope="col">Sync</th>
          </tr>
        </thead>
        <tbody>
          {view.members.map((m) => (
            <tr key={m.name}>
              <th scope="row">
                {m.name}
                {m.maintenance ? ' (maintenance)' : ''}
              </th>
              <td>
                <Badge value={m.role} />
              </td>
              <td>{isReadyMember(m, view.primary) ? 'yes' : 'no'}</td>
              <td>{m.role === 'primary' ? '—' : m.lagMib === null ? '?' : formatValue(m.lagMib * 1048576, 'bytes')}</td>
              <td>
                {m.term ?? '?'} / {m.timeline ?? '?'}
              </td>
              <td>{m.syncState ?? '—'}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function Switchover(props: { tree: Tree; view: ClusterView }) {
  const { session } = useLive();
  const standbys = props.view.members.filter((m) => m.role === 'standby').map((m) => m.name);
  const [to, setTo] = useState('');
  const last = props.view.switchover;
  const ask = async (): Promise<string> => {
    const cluster = await loadCluster(session.api, props.tree.title);
    const { parameters, request } = withSwitchover(cluster.name, cluster.parameters, to === '' ? null : to);
    await requestCluster(session.api, cluster, parameters);
    return `switchover ${request.id} requested: the members carry it out (its result shows below)`;
  };
  return (
    <div class="action-row">
      <label for="switchover-to">Switch the primary to</label>
      <select id="switchover-to" value={to} onChange={(e) => setTo(e.currentTarget.value)}>
        <option value="">the best standby</option>
        {standbys.map((name) => (
          <option key={name} value={name}>
            {name}
          </option>
        ))}
      </select>
      <ConfirmButton
        label="Switchover"
        title={`Switch over ${props.tree.title}?`}
        confirmLabel="Switch over"
        disabled={props.view.primary === null || standbys.length === 0}
        action={ask}
      >
        <p>
          The primary {props.view.primary ?? ''} hands its role to {to === '' ? 'the best standby' : to}. Writes pause
          for a few seconds while it does; no committed transaction is lost.
        </p>
      </ConfirmButton>
      {last === null ? null : (
        <p class="muted" role="status">
          Last switchover {last.id}: <Badge value={last.result} />
          {last.from === null ? '' : ` from ${last.from}`}
          {last.to === null ? '' : ` to ${last.to}`}
          {last.reason === null ? '' : ` — ${last.reason}`}
          {last.durationMs === null ? '' : ` (${(last.durationMs / 1000).toFixed(1)} s)`}
        </p>
      )}
    </div>
  );
}

function Events(props: { view: ClusterView }) {
  const events = [...props.view.events].reverse();
  return (
    <details>
      <summary>Events ({events.length})</summary>
      {events.length === 0 ? (
        <p class="muted">No event published.</p>
      ) : (
        <ol class="timeline">
          {events.map((e, i) => (
            <li key={`${e.at}-${i}`}>
              <Age at={e.at === '' ? null : e.at} /> <strong>{e.member}</strong> {e.kind}
              {e.term === null ? '' : ` (term ${e.term})`}
              {e.detail === '' ? '' : `: ${e.detail}`}
            </li>
          ))}
        </ol>
      )}
    </details>
  );
}

function Backups(props: { view: ClusterView }) {
  const backups = props.view.backups;
  if (backups === null) return null;
  const list = [...(backups.list ?? [])].reverse();
  return (
    <details>
      <summary>
        Backups ({backups.count}
        {backups.wal === null ? '' : `, WAL archived up to ${backups.wal.last}`})
      </summary>
      {backups.error === null ? null : <p class="error">{backups.error}</p>}
      {list.length === 0 ? (
        <p class="muted">No base backup yet (hox db backup {''}takes one now).</p>
      ) : (
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Backup</th>
                <th scope="col">Finished</th>
                <th scope="col">From</th>
                <th scope="col">Size</th>
                <th scope="col">Verified</th>
              </tr>
            </thead>
            <tbody>
              {list.map((b) => (
                <tr key={b.id}>
                  <th scope="row">{b.id}</th>
                  <td>
                    <Age at={b.finishedAt} />
                  </td>
                  <td>{b.member ?? '—'}</td>
                  <td>{formatValue(b.bytes, 'bytes')}</td>
                  <td>{b.verified ? 'yes' : 'no'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </details>
  );
}

/**
 * A restore: a new cluster from this one's base backups and archived WAL, to its latest transaction or just
 * before a time, as `hox db restore NEW --from THIS [--time T] [--backup ID]` (the same plan: restore-plan.ts).
 */
function RestoreForm(props: { tree: Tree; view: ClusterView }) {
  const { session } = useLive();
  const [name, setName] = useState(`${props.tree.title}-restored`);
  const [latest, setLatest] = useState(true);
  const [time, setTime] = useState('');
  const [backup, setBackup] = useState('');
  const [members, setMembers] = useState('');
  const [created, setCreated] = useState<string | null>(null);
  const backups = props.view.backups?.list ?? [];
  const restore = async (): Promise<string> => {
    const at = latest ? null : time === '' ? '' : new Date(time).toISOString();
    const plan = await planRestore(
      session.api,
      name.trim(),
      {
        from: props.tree.title,
        time: at,
        backup: backup === '' ? null : backup,
        ...(members === '' ? {} : { members: Number(members) }),
      },
      Date.now(),
    );
    const answer = await requestRestore(session.api, name.trim(), plan.parameters);
    setCreated(name.trim());
    const to = plan.target === null ? 'its latest transaction' : `just before ${plan.target.iso}`;
    if (isNotReady(answer)) return `restore to ${to} accepted, not placed yet: ${answer.message}`;
    return `restore to ${to} requested${plan.warning === null ? '' : ` (warning: ${plan.warning})`}`;
  };
  return (
    <details>
      <summary>Restore into a new cluster</summary>
      <form class="restore" onSubmit={(e) => e.preventDefault()}>
        <label for="restore-name">New cluster's name</label>
        <input id="restore-name" value={name} required onInput={(e) => setName(e.currentTarget.value)} />
        <fieldset>
          <legend>Restore to</legend>
          <label class="inline">
            <input type="radio" name="restore-point" checked={latest} onChange={() => setLatest(true)} /> the latest
            archived transaction
          </label>
          <label class="inline">
            <input type="radio" name="restore-point" checked={!latest} onChange={() => setLatest(false)} /> just before
          </label>
          <label for="restore-time" class="visually-hidden">
            Time to restore to (local time)
          </label>
          <input
            id="restore-time"
            type="datetime-local"
            step={1}
            disabled={latest}
            value={time}
            onInput={(e) => setTime(e.currentTarget.value)}
          />
        </fieldset>
        <label for="restore-backup">Base backup</label>
        <select id="restore-backup" value={backup} onChange={(e) => setBackup(e.currentTarget.value)}>
          <option value="">the newest one before the target</option>
          {backups.map((b) => (
            <option key={b.id} value={b.id}>
              {b.id}
            </option>
          ))}
        </select>
        <label for="restore-members">Members</label>
        <input
          id="restore-members"
          type="number"
          min={1}
          max={7}
          placeholder="3 (the release's default)"
          value={members}
          onInput={(e) => setMembers(e.currentTarget.value)}
        />
        <ConfirmButton
          label="Restore"
          title={`Restore ${props.tree.title} into '${name.trim()}'?`}
          confirmLabel="Restore"
          disabled={name.trim() === '' || (!latest && time === '')}
          action={restore}
        >
          <p>
            A new cluster '{name.trim()}' is made from {props.tree.title}'s base backup and archived WAL, replayed to{' '}
            {latest ? 'the latest archived transaction' : `just before ${time.replace('T', ' ')} (your time)`}.{' '}
            {props.tree.title} itself is not touched.
          </p>
        </ConfirmButton>
        {created === null ? null : (
          <p>
            <a href={href({ view: 'tree', title: created })}>Follow {created}</a>
          </p>
        )}
      </form>
    </details>
  );
}
