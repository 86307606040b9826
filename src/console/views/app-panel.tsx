/**
 * A hyper_edge app, as `hox app status` reads it (src/cli/app/app-view.ts): its URL, health, replicas, the
 * releases it keeps, its config (masked until revealed), and two actions that are new releases or a new scale,
 * built as `hox app rollback` and `hox app scale` build them (src/cli/app/app-parameters.ts). The replicas then
 * roll the change out; the view follows it through the change feed.
 */
import { useState } from 'preact/hooks';
import {
  expectedReplicas,
  nextRelease,
  requestApp,
  requireApp,
  type AppParameters,
  type AppRelease,
} from '../../cli/app/app-parameters.js';
import { readAppView, viewHealth } from '../../cli/app/app-view.js';
import { useLive } from '../live.js';
import { Age, Badge, ConfirmButton, Secret } from '../ui.js';
import type { Tree, TreeInstance } from './tree-view.js';

const MAX_SCALE = 20;

export function AppPanel(props: { tree: Tree; root: TreeInstance }) {
  const parameters = props.root.parameters as AppParameters;
  const view = readAppView(props.root.connection_parameters);
  const health = viewHealth(view, expectedReplicas(parameters), props.tree);
  const release = parameters.release;
  return (
    <section aria-labelledby="app-heading">
      <h2 id="app-heading">App</h2>
      <dl class="facts">
        <dt>URL</dt>
        <dd>
          {view.url === null ? (
            'not published yet'
          ) : (
            <a href={view.url} rel="noreferrer noopener" target="_blank">
              {view.url}
            </a>
          )}
        </dd>
        <dt>Health</dt>
        <dd>
          <Badge value={health.health} />
          {health.message === null ? null : <span class="detail"> {health.message}</span>}
        </dd>
        <dt>Release</dt>
        <dd>{view.release === null ? 'nothing deployed' : `v${view.release}`}</dd>
        {view.cdn === null ? null : (
          <>
            <dt>CDN</dt>
            <dd>
              {view.cdn.domains.join(', ')} <Badge value={view.cdn.state} />
              {view.cdn.edge_count === 0 ? '' : ` on ${view.cdn.live_edges} of ${view.cdn.edge_count} edges`}
              {view.cdn.error === null ? '' : ` — ${view.cdn.error}`}
            </dd>
          </>
        )}
        {view.addon === null ? null : (
          <>
            <dt>Addon</dt>
            <dd>
              {view.addon.kind} {view.addon.name} {view.addon.ready ? 'ready' : `not ready ${view.addon.problem ?? ''}`}
            </dd>
          </>
        )}
      </dl>
      <div class="table-wrap">
        <table>
          <caption>Replicas</caption>
          <thead>
            <tr>
              <th scope="col">Replica</th>
              <th scope="col">State</th>
              <th scope="col">Serving</th>
              <th scope="col">Now</th>
            </tr>
          </thead>
          <tbody>
            {view.replicas.map((r) => (
              <tr key={r.name}>
                <th scope="row">{r.name}</th>
                <td>
                  <Badge value={r.state} />
                </td>
                <td>{r.serving === null ? '—' : `v${r.serving}`}</td>
                <td class="wrap">
                  {r.deploying === null ? '' : `deploying v${r.deploying.release}: ${r.deploying.step}. `}
                  {r.failed === null ? '' : `v${r.failed.release} failed: ${r.failed.reason}. `}
                  {r.web_down === null ? '' : `${r.web_down.reason} (${r.web_down.restarts} restarts). `}
                  {r.error ?? ''}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <Releases tree={props.tree} parameters={parameters} />
      <Scale tree={props.tree} parameters={parameters} />
      {release === undefined ? null : <Config release={release} />}
    </section>
  );
}

function Releases(props: { tree: Tree; parameters: AppParameters }) {
  const { session } = useLive();
  const { parameters } = props;
  const releases = [...(parameters.release === undefined ? [] : [parameters.release]), ...(parameters.history ?? [])];
  const failed = parameters.failed_releases ?? [];
  const rollback = async (target: AppRelease): Promise<string> => {
    // Read back what the master holds now: another release may have come since this view loaded.
    const current = (await requireApp(session.api, props.tree.title)).parameters;
    const next = nextRelease(current, {
      artifact: target.artifact,
      env: target.env,
      description: `rollback to v${target.id}`,
    });
    await requestApp(session.api, props.tree.title, { ...current, ...next });
    return `v${next.release.id} (rollback to v${target.id}) requested: the replicas roll it out one at a time`;
  };
  return (
    <div class="table-wrap">
      <table>
        <caption>Releases</caption>
        <thead>
          <tr>
            <th scope="col">Release</th>
            <th scope="col">What</th>
            <th scope="col">Created</th>
            <th scope="col">Action</th>
          </tr>
        </thead>
        <tbody>
          {releases.map((r, i) => (
            <tr key={r.id}>
              <th scope="row">v{r.id}</th>
              <td>{r.description}</td>
              <td>
                <Age at={r.created_at} />
              </td>
              <td>
                {i === 0 ? (
                  <span class="muted">current</span>
                ) : (
                  <ConfirmButton
                    label={`Roll back to v${r.id}`}
                    title={`Roll ${props.tree.title} back to v${r.id}?`}
                    confirmLabel="Roll back"
                    action={() => rollback(r)}
                  >
                    <p>
                      A new release is made with v{r.id}'s code and config ("{r.description}"). The replicas take it one
                      at a time; if it fails they keep serving the current one.
                    </p>
                  </ConfirmButton>
                )}
              </td>
            </tr>
          ))}
          {failed.map((f) => (
            <tr key={`failed-${f.id}`}>
              <th scope="row">v{f.id}</th>
              <td>
                <Badge value="failed" /> {f.description}: {f.reason}
              </td>
              <td>
                <Age at={f.created_at} />
              </td>
              <td class="muted">not kept</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function Scale(props: { tree: Tree; parameters: AppParameters }) {
  const { session } = useLive();
  const current = expectedReplicas(props.parameters);
  const [replicas, setReplicas] = useState(String(current));
  const wanted = Number(replicas);
  const valid = Number.isInteger(wanted) && wanted >= 1 && wanted <= MAX_SCALE;
  const scale = async (): Promise<string> => {
    const app = await requireApp(session.api, props.tree.title);
    await requestApp(session.api, props.tree.title, { ...app.parameters, scale: wanted });
    return `scale ${wanted} requested`;
  };
  return (
    <div class="action-row">
      <label for="scale">Replicas</label>
      <input
        id="scale"
        type="number"
        min={1}
        max={MAX_SCALE}
        inputMode="numeric"
        value={replicas}
        aria-invalid={!valid}
        aria-describedby="scale-help"
        onInput={(e) => setReplicas(e.currentTarget.value)}
      />
      <span id="scale-help" class="muted">
        now {current}, 1 to {MAX_SCALE}
      </span>
      <ConfirmButton
        label="Scale"
        title={`Scale ${props.tree.title} to ${wanted} replicas?`}
        confirmLabel="Scale"
        disabled={!valid || wanted === current}
        action={scale}
      >
        <p>
          {wanted > current
            ? `${wanted - current} replica(s) are allocated and start the current release.`
            : `${current - wanted} replica(s) are drained and removed.`}
        </p>
      </ConfirmButton>
    </div>
  );
}

function Config(props: { release: AppRelease }) {
  const entries = Object.entries(props.release.env);
  return (
    <details>
      <summary>Config ({entries.length} variables)</summary>
      {entries.length === 0 ? (
        <p class="muted">No config variable (hox app config set sets them).</p>
      ) : (
        <dl class="parameters">
          {entries.map(([key, value]) => (
            <div key={key}>
              <dt>{key}</dt>
              <dd>
                <Secret value={value} label={key} />
              </dd>
            </div>
          ))}
        </dl>
      )}
    </details>
  );
}
