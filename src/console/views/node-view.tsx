/** A compute node (the admin's view): its contact, partitions and what runs in them, software, and metrics. */
import { MetricCharts } from '../chart.js';
import { useLoad } from '../live.js';
import { href } from '../route.js';
import { Age, Badge, Loading, Problem } from '../ui.js';

export function NodeView(props: { id: string }) {
  const computer_guid = props.id;
  const node = useLoad(
    async (api, options) =>
      (await api.call('listNodes', {}, options)).result_list.find((n) => n.computer_guid === computer_guid) ?? null,
    [computer_guid],
  );
  const partitions = useLoad(
    (api, options) => api.call('listPartitionDocuments', { computer_guid }, options),
    [computer_guid],
  );
  const software = useLoad(
    (api, options) => api.call('listSoftwareStatus', { computer_guid }, options),
    [computer_guid],
  );
  return (
    <section>
      <h1 tabIndex={-1}>Compute node {props.id}</h1>
      <Problem text={node.error} />
      {node.data === undefined ? (
        <Loading what="the node" error={node.error} />
      ) : node.data === null ? (
        <p class="error">No compute node '{props.id}' is registered.</p>
      ) : (
        <dl class="facts">
          <dt>Title</dt>
          <dd>{node.data.title}</dd>
          <dt>Status</dt>
          <dd>{node.data.status_text}</dd>
          <dt>Last contact</dt>
          <dd>
            <Age at={node.data.last_contact_at} />
          </dd>
          <dt>Partitions</dt>
          <dd>
            {node.data.partition_count - node.data.free_partition_count} used of {node.data.partition_count}
          </dd>
        </dl>
      )}
      <section aria-labelledby="partitions-heading">
        <h2 id="partitions-heading">Partitions in use</h2>
        <Problem text={partitions.error} />
        {partitions.data === undefined ? (
          <Loading what="partitions" error={partitions.error} />
        ) : partitions.data.result_list.length === 0 ? (
          <p class="muted">No instance runs here.</p>
        ) : (
          <div class="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">Partition</th>
                  <th scope="col">Instance</th>
                  <th scope="col">Release</th>
                  <th scope="col">State</th>
                  <th scope="col">Status</th>
                </tr>
              </thead>
              <tbody>
                {partitions.data.result_list.map((p) => (
                  <tr key={p.compute_partition_id}>
                    <th scope="row">{p.compute_partition_id}</th>
                    <td>
                      {p.root_instance_title === '' ? (
                        p.title
                      ) : (
                        <>
                          <a href={href({ view: 'tree', title: p.root_instance_title })}>{p.root_instance_title}</a> /{' '}
                          {p.title}
                        </>
                      )}
                    </td>
                    <td>
                      {p.software_release_uri} ({p.software_type})
                    </td>
                    <td>
                      <Badge value={p.state} />
                    </td>
                    <td class="wrap">{p.access_status_message ?? ''}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
      <section aria-labelledby="software-heading">
        <h2 id="software-heading">Software installations</h2>
        <Problem text={software.error} />
        {software.data === undefined ? (
          <Loading what="software" error={software.error} />
        ) : (
          <ul class="plain">
            {software.data.result_list.map((s) => (
              <li key={s.software_release_uri}>
                <code>{s.software_release_uri}</code> <Badge value={s.reported_state ?? s.state} />
                {s.error_message === null ? null : <span class="error"> {s.error_message}</span>}
              </li>
            ))}
          </ul>
        )}
      </section>
      <section aria-labelledby="metrics-heading">
        <h2 id="metrics-heading">Metrics, last hour</h2>
        <MetricCharts target={props.id} minutes={60} />
      </section>
    </section>
  );
}
