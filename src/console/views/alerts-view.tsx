/** Alerts raised by the platform's monitor (forecasts, anomalies, facts) and what maintenance did about them. */
import { useState } from 'preact/hooks';
import type { ResponseOf } from '../../client/route-call.js';
import { useLoad } from '../live.js';
import { href } from '../route.js';
import { Age, Badge, Loading, Problem } from '../ui.js';

type Alert = ResponseOf<'listAlerts'>['result_list'][number];

export function AlertsView() {
  const [all, setAll] = useState(false);
  const alerts = useLoad((api, options) => api.call('listAlerts', all ? { all: true } : {}, options), [all]);
  return (
    <section>
      <h1 tabIndex={-1}>Alerts</h1>
      <label class="inline">
        <input type="checkbox" checked={all} onChange={(e) => setAll(e.currentTarget.checked)} /> Also those resolved in
        the last 7 days
      </label>
      <Problem text={alerts.error} />
      {alerts.data === undefined ? (
        <Loading what="alerts" error={alerts.error} />
      ) : (
        <AlertTable alerts={alerts.data.result_list} />
      )}
    </section>
  );
}

function where(alert: Alert) {
  if (alert.tree !== null)
    return (
      <a href={href({ view: 'tree', title: alert.tree })}>
        {alert.tree}
        {alert.instance === null ? '' : ` / ${alert.instance}`}
      </a>
    );
  return <a href={href({ view: 'node', id: alert.node })}>{alert.node}</a>;
}

/** What maintenance did (src/master/remediation.ts records `policy`, `done`, then `note` or `reason`). */
function actionText(action: Record<string, unknown> | null): string | null {
  if (action === null) return null;
  const policy = typeof action['policy'] === 'string' ? action['policy'] : 'action';
  const said = typeof action['note'] === 'string' ? action['note'] : action['reason'];
  return `${policy}: ${action['done'] === true ? 'done' : 'not done'}${typeof said === 'string' ? ` — ${said}` : ''}`;
}

export function AlertTable(props: { alerts: Alert[] }) {
  if (props.alerts.length === 0) return <p class="muted">No alert.</p>;
  return (
    <div class="table-wrap">
      <table>
        <thead>
          <tr>
            <th scope="col">Severity</th>
            <th scope="col">Rule</th>
            <th scope="col">Where</th>
            <th scope="col">What</th>
            <th scope="col">Expected at</th>
            <th scope="col">Opened</th>
            <th scope="col">Action</th>
          </tr>
        </thead>
        <tbody>
          {props.alerts.map((a) => (
            <tr key={a.id}>
              <td>
                <Badge value={a.state === 'resolved' ? 'resolved' : a.severity} />
              </td>
              <td>{a.rule}</td>
              <td>{where(a)}</td>
              <td>{a.summary}</td>
              <td>{a.eta === null ? '—' : new Date(a.eta).toLocaleString()}</td>
              <td>
                <Age at={a.opened_at} />
              </td>
              <td>{actionText(a.action) ?? '—'}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
