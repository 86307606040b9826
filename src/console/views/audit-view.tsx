/** The audit trail: every call that may change something, who made it, on what, and how it ended. */
import { useState } from 'preact/hooks';
import type { ResponseOf } from '../../client/route-call.js';
import { useLoad } from '../live.js';
import { Age, Badge, Loading, Problem } from '../ui.js';

type Entry = ResponseOf<'listAuditLog'>['result_list'][number];

/** Entries read; those shown are the newest of them that pass the filter. */
const LIMIT = 1000;
const SHOWN = 200;

/** People act; nodes and instances report (every state, every promise run): their calls would bury the others. */
const PEOPLE = new Set(['admin', 'user']);

export function AuditView() {
  const [people, setPeople] = useState(true);
  const log = useLoad((api, options) => api.call('listAuditLog', { limit: LIMIT }, options), []);
  const entries =
    log.data === undefined
      ? undefined
      : [...log.data.result_list]
          .reverse()
          .filter((e) => !people || PEOPLE.has(e.actor_kind))
          .slice(0, SHOWN);
  return (
    <section>
      <h1 tabIndex={-1}>Audit log</h1>
      <p class="muted">
        The newest calls that may change something, newest first: up to {SHOWN} of the last {LIMIT} (hox audit reads
        further back).
      </p>
      <label class="inline">
        <input type="checkbox" checked={people} onChange={(e) => setPeople(e.currentTarget.checked)} /> Only
        people&apos;s calls (the admin&apos;s and users&apos;), not the reports of nodes and instances
      </label>
      <Problem text={log.error} />
      {entries === undefined ? <Loading what="the audit log" error={log.error} /> : <AuditTable entries={entries} />}
    </section>
  );
}

function targetText(target: Entry['target']): string {
  return Object.entries(target)
    .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join(',') : String(v)}`)
    .join(' ');
}

function AuditTable(props: { entries: Entry[] }) {
  if (props.entries.length === 0) return <p class="muted">Nothing recorded yet.</p>;
  return (
    <div class="table-wrap">
      <table>
        <thead>
          <tr>
            <th scope="col">When</th>
            <th scope="col">Who</th>
            <th scope="col">Action</th>
            <th scope="col">On</th>
            <th scope="col">Result</th>
          </tr>
        </thead>
        <tbody>
          {props.entries.map((e) => (
            <tr key={e.seq}>
              <td>
                <Age at={e.at} />
              </td>
              <td>
                {e.actor_kind}
                {e.actor === null ? '' : ` ${e.actor}`}
              </td>
              <td>{e.action}</td>
              <td class="wrap">{targetText(e.target)}</td>
              <td>
                <Badge value={e.result === 'ok' ? 'ok' : 'error'} /> {e.result === 'ok' ? '' : e.result}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
