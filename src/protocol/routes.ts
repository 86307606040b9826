/**
 * The route table: every endpoint of the master, its body schemas and who may
 * call it. The master serves exactly these, the client calls them by name,
 * and the OpenAPI document is generated from them.
 *
 * All endpoints are `POST <path>` with a JSON body (SlapOS's style, which our
 * own `hox.*.v1.*` endpoints follow too). Only `GET /health` and
 * `GET /openapi.json` are outside this table and unauthenticated.
 */
import type { BodyName } from './schemas.js';
import type { TokenKind } from '../shared/states.js';

export interface RouteSpec {
  path: string;
  summary: string;
  /**
   * Whether each call is appended to the audit trail (docs/security/audit.md): true for every call that may change
   * something (or issue a credential), false for reads. Declared, never guessed from the path; test/audit.test.ts
   * checks it against the path's verb.
   */
  audit: boolean;
  /** Token kinds accepted; the handler applies finer object-level checks. */
  auth: readonly TokenKind[];
  body: BodyName;
  response: BodyName;
}

const ANY_ACTOR = ['admin', 'user', 'node', 'instance'] as const;
const NODE = ['admin', 'node'] as const;
const REQUESTERS = ['admin', 'user', 'instance'] as const;
const PEOPLE = ['admin', 'user'] as const;
const ADMIN = ['admin'] as const;

export const ROUTES = {
  // ---- SlapOS JSON API v0 ------------------------------------------------
  supply: {
    path: '/slapos.post.v0.software_installation',
    audit: true,
    summary: 'Supply (or remove) a software release on a compute node',
    auth: ADMIN,
    body: 'softwareInstallation',
    response: 'success',
  },
  listSoftwareInstallations: {
    path: '/slapos.allDocs.v0.compute_node_software_installation_list',
    audit: false,
    summary: 'Software releases a compute node must install or remove',
    auth: NODE,
    body: 'computeNodeSoftwareInstallationList',
    response: 'computeNodeSoftwareInstallationListResult',
  },
  reportSoftwareState: {
    path: '/slapos.put.v0.software_installation_reported_state',
    audit: true,
    summary: 'Report building / available / destroyed for a software installation',
    auth: NODE,
    body: 'softwareInstallationReportedState',
    response: 'success',
  },
  reportSoftwareError: {
    path: '/slapos.put.v0.software_installation_error',
    audit: true,
    summary: 'Report a software installation failure',
    auth: NODE,
    body: 'softwareInstallationError',
    response: 'success',
  },
  formatNode: {
    path: '/slapos.put.v0.compute_node_format',
    audit: true,
    summary: "Send a compute node's partition list",
    auth: NODE,
    body: 'computeNodeFormat',
    response: 'success',
  },
  nodeStatus: {
    path: '/slapos.get.v0.compute_node_status',
    audit: false,
    summary: 'Status of a compute node',
    auth: NODE,
    body: 'computerGuid',
    response: 'computeNodeStatusResult',
  },
  bangNode: {
    path: '/slapos.put.v0.compute_node_bang',
    audit: true,
    summary: 'Make a compute node reprocess all its instances',
    auth: NODE,
    body: 'computeNodeMessage',
    response: 'success',
  },
  reportUsage: {
    path: '/slapos.post.v0.compute_node_usage',
    audit: true,
    summary: 'Report resource usage (TioXML)',
    auth: NODE,
    body: 'computeNodeUsage',
    response: 'success',
  },
  nodeCertificate: {
    path: '/slapos.post.v0.compute_node_certificate',
    audit: true,
    summary: 'Issue a compute node certificate',
    auth: NODE,
    body: 'computerGuid',
    response: 'certificate',
  },
  removeNodeCertificate: {
    path: '/slapos.remove.v0.compute_node_certificate',
    audit: true,
    summary: 'Revoke a compute node certificate',
    auth: NODE,
    body: 'computerGuid',
    response: 'success',
  },
  listNodeInstances: {
    path: '/slapos.allDocs.v0.compute_node_instance_list',
    audit: false,
    summary: 'Instances a compute node must run (destroyed ones until confirmed); an instance sees itself only',
    auth: ['admin', 'node', 'instance'],
    body: 'computerGuid',
    response: 'computeNodeInstanceListResult',
  },
  getPartition: {
    path: '/slapos.get.v0.compute_partition',
    audit: false,
    summary: 'The instance on a partition (or an empty document for a free one)',
    auth: NODE,
    body: 'computePartition',
    response: 'instanceDocument',
  },
  requestInstance: {
    path: '/slapos.post.v0.software_instance',
    audit: true,
    summary: 'Request an instance (root for a user, child for an instance); create, update or destroy',
    auth: REQUESTERS,
    body: 'softwareInstance',
    response: 'requestResult',
  },
  getInstance: {
    path: '/slapos.get.v0.software_instance',
    audit: false,
    summary: 'Read an instance',
    auth: ANY_ACTOR,
    body: 'instanceGuid',
    response: 'requestResult',
  },
  listHostedInstances: {
    path: '/slapos.allDocs.v0.instance_node_instance_list',
    audit: false,
    summary: 'Shared instances hosted by an instance',
    auth: ANY_ACTOR,
    body: 'instanceGuid',
    response: 'instanceNodeInstanceListResult',
  },
  reportInstanceState: {
    path: '/slapos.put.v0.software_instance_reported_state',
    audit: true,
    summary: 'Report started / stopped / destroyed for an instance',
    auth: ['admin', 'node', 'instance'],
    body: 'softwareInstanceReportedState',
    response: 'success',
  },
  reportInstanceError: {
    path: '/slapos.put.v0.software_instance_error',
    audit: true,
    summary: 'Report an instance error',
    auth: ['admin', 'node', 'instance'],
    body: 'instanceMessage',
    response: 'success',
  },
  publishConnectionParameters: {
    path: '/slapos.put.v0.software_instance_connection_parameter',
    audit: true,
    summary: 'Publish connection parameters (of an instance, or of a shared instance it hosts)',
    auth: ['admin', 'node', 'instance'],
    body: 'connectionParameter',
    response: 'success',
  },
  bangInstance: {
    path: '/slapos.put.v0.software_instance_bang',
    audit: true,
    summary: "Make every instance of the instance's tree reprocess",
    auth: ANY_ACTOR,
    body: 'instanceMessage',
    response: 'success',
  },
  renameInstance: {
    path: '/slapos.put.v0.software_instance_title',
    audit: true,
    summary: 'Rename an instance (a root renames its tree)',
    auth: REQUESTERS,
    body: 'softwareInstanceTitle',
    response: 'success',
  },
  instanceCertificate: {
    path: '/slapos.get.v0.software_instance_certificate',
    audit: true,
    summary: 'Issue an instance certificate',
    auth: ['admin', 'node', 'instance'],
    body: 'instanceGuid',
    response: 'certificate',
  },
  // Not SlapOS's: a web site's server certificate, from the sites CA (src/master/pki/site-certificates.ts).
  issueSiteCertificate: {
    path: '/hox.post.v1.site_certificate',
    audit: true,
    summary: "Issue a server certificate for sites the instance's tree hosts (the sites CA)",
    auth: ['admin', 'node', 'instance'],
    body: 'siteCertificate',
    response: 'siteCertificateResult',
  },
  getInstanceTree: {
    path: '/slapos.get.v0.instance_tree',
    audit: false,
    summary: 'Root instance of one of your instance trees',
    auth: PEOPLE,
    body: 'instanceTree',
    response: 'requestResult',
  },
  listInstanceTrees: {
    path: '/slapos.allDocs.v0.instance_tree_list',
    audit: false,
    summary: 'Titles of your instance trees',
    auth: PEOPLE,
    body: 'instanceTreeList',
    response: 'instanceTreeListResult',
  },
  hateoasUrl: {
    path: '/slapos.get.v0.hateoas_url',
    audit: false,
    summary: 'Base URL of this master',
    auth: ANY_ACTOR,
    body: 'hateoasUrl',
    response: 'hateoasUrlResult',
  },

  // ---- HyperOpenX v1 -------------------------------------------------------
  createRegistrationToken: {
    path: '/hox.post.v1.registration_token',
    audit: true,
    summary: 'Issue a one-time token a compute node registers with',
    auth: ADMIN,
    body: 'registrationToken',
    response: 'registrationTokenResult',
  },
  registerNode: {
    path: '/hox.post.v1.compute_node',
    audit: true,
    summary: 'Register a compute node (with a registration token); returns its node token',
    auth: ['admin', 'registration'],
    body: 'computeNodeRegister',
    response: 'computeNodeRegisterResult',
  },
  listNodes: {
    path: '/hox.allDocs.v1.compute_node_list',
    audit: false,
    summary: 'All compute nodes with partition counts',
    auth: ADMIN,
    body: 'computeNodeList',
    response: 'computeNodeListResult',
  },
  listPartitionDocuments: {
    path: '/hox.allDocs.v1.compute_partition_list',
    audit: false,
    summary: 'Every partition of a compute node with its full instance document (one call per sync)',
    auth: NODE,
    body: 'computerGuid',
    response: 'computePartitionListResult',
  },
  listSoftwareStatus: {
    path: '/hox.allDocs.v1.software_installation_list',
    audit: false,
    summary: 'Software installations of a compute node with requested and reported states',
    auth: NODE,
    body: 'computerGuid',
    response: 'softwareInstallationStatusResult',
  },
  issueInstanceToken: {
    path: '/hox.post.v1.instance_token',
    audit: true,
    summary: 'Issue the token an instance acts with (replaces the previous one)',
    auth: NODE,
    body: 'instanceToken',
    response: 'instanceTokenResult',
  },
  // Its own endpoint, not a field of an instance report: those are sent as the instance, change its
  // status and wake its tree's watchers; usage is the node's, sent for all its partitions at once every
  // 30 s or so, and stored without a change record. Nor SlapOS's compute_node_usage: TioXML is an
  // accounting record appended for billing, this is the current state, replaced by each report.
  reportPartitionUsage: {
    path: '/hox.put.v1.partition_usage',
    // Node telemetry, replaced every ~30 s: it would crowd people's actions out of the audit log's row cap.
    audit: false,
    summary: "Report each busy partition's limits and current usage (replaces the previous report; wakes no watcher)",
    auth: NODE,
    body: 'partitionUsageReport',
    response: 'success',
  },
  // The node's own metrics, for Prometheus through the master's /metrics: telemetry, replaced every ~30 s, not
  // audited, no change record (as partition usage).
  reportNodeMetrics: {
    path: '/hox.put.v1.node_metrics',
    audit: false,
    summary: "Report the node's own metrics: CPU, load, memory, filesystems (replaces the previous report)",
    auth: NODE,
    body: 'nodeMetricsReport',
    response: 'success',
  },
  // A monitor's evaluation, every minute or so: the master keeps each alert's opening and resolution itself (the
  // alert table is the record); audited, it would crowd people's actions out.
  reportAlerts: {
    path: '/hox.put.v1.alerts',
    audit: false,
    summary:
      "Report a monitor's open alerts (replaces its previous report: alerts left out are resolved); an hyper_monitor instance of the admin's",
    auth: ['admin', 'instance'],
    body: 'alertReport',
    response: 'alertReportResult',
  },
  listAlerts: {
    path: '/hox.get.v1.alerts',
    audit: false,
    summary: "Open alerts (and with all, those resolved in the last 7 days): a user's on its own trees only",
    auth: PEOPLE,
    body: 'alertQuery',
    response: 'alertList',
  },
  // Waits (bounded) for the monitor's Prometheus: holds no transaction while it does.
  queryMetrics: {
    path: '/hox.get.v1.metrics',
    audit: false,
    summary:
      "Key series of a compute node (the admin's only) or of one of the caller's instance trees, from the platform's monitor",
    auth: PEOPLE,
    body: 'metricsQuery',
    response: 'metricsResult',
  },
  // Its own endpoint too, for the same reasons as usage: the node's, for all its partitions at once, and
  // stored without a change record (the instance's state or error report, which goes with any promise
  // turning ok or failed, is what wakes its tree's watchers).
  reportPromiseResults: {
    path: '/hox.put.v1.promise_result',
    // Node telemetry, replaced every ~30 s: it would crowd people's actions out of the audit log's row cap.
    audit: false,
    summary:
      "Report each busy partition's promises with their latest results (replaces the previous report; wakes no watcher)",
    auth: NODE,
    body: 'promiseReport',
    response: 'success',
  },
  // Sent at destroy time, before the instance's destroyed report: the master still knows the instance then,
  // and so whose the set is. A node can only ever describe what it held for an instance it ran.
  reportRetainedSet: {
    path: '/hox.post.v1.retained_set',
    audit: true,
    summary: 'Report what a node kept of an instance it is destroying (before reporting it destroyed)',
    auth: NODE,
    body: 'retainedSetReport',
    response: 'success',
  },
  reportRetainedSets: {
    path: '/hox.put.v1.retained_set_list',
    // Node telemetry, sent at every sweep: the sets appear in the log with their own report (reportRetainedSet).
    audit: false,
    summary: 'Report every retained set a node still holds (the master forgets the others)',
    auth: NODE,
    body: 'retainedSetList',
    response: 'success',
  },
  listRetainedSets: {
    path: '/hox.allDocs.v1.retained_set_list',
    audit: false,
    summary: "What nodes keep of the caller's destroyed instances (a destroyed cluster's backups), until when",
    auth: PEOPLE,
    body: 'retainedSetQuery',
    response: 'retainedSetQueryResult',
  },
  createUser: {
    path: '/hox.post.v1.user',
    audit: true,
    summary: 'Create a user and its first token',
    auth: ADMIN,
    body: 'user',
    response: 'userResult',
  },
  createUserToken: {
    path: '/hox.post.v1.user_token',
    audit: true,
    summary: 'Issue another token for a user',
    auth: ADMIN,
    body: 'user',
    response: 'userResult',
  },
  issueUserCertificate: {
    path: '/hox.post.v1.user_certificate',
    audit: true,
    summary:
      "Issue the caller's own client certificate: what SlapOS's clients (slapos request) present instead of a token",
    auth: ['user'],
    body: 'userCertificate',
    response: 'certificate',
  },
  listUsers: {
    path: '/hox.allDocs.v1.user_list',
    audit: false,
    summary: 'All users',
    auth: ADMIN,
    body: 'userList',
    response: 'userListResult',
  },
  whoami: {
    path: '/hox.get.v1.whoami',
    audit: false,
    summary: 'What the token is',
    auth: ['admin', 'user', 'node', 'instance', 'registration'],
    body: 'whoami',
    response: 'whoamiResult',
  },
  listTreeStatus: {
    path: '/hox.allDocs.v1.instance_tree_status_list',
    audit: false,
    summary: 'Instance trees with every instance, its placement, state and health',
    auth: PEOPLE,
    body: 'treeStatusList',
    response: 'treeStatusListResult',
  },
  waitForChange: {
    path: '/hox.get.v1.change',
    audit: false,
    summary: 'Wait (bounded) for the next change concerning the caller',
    auth: ANY_ACTOR,
    body: 'change',
    response: 'changeResult',
  },
  // Logs stay on the nodes, which only connect out: a request waits in the store for the node's agent
  // (which long-polls for it), and the master that took it waits (bounded) for the answer.
  readTreeLogs: {
    path: '/hox.get.v1.instance_tree_log',
    audit: false,
    summary: "Service log lines of a tree's instances, read by the nodes running them (waits at most 10 s for them)",
    auth: PEOPLE,
    body: 'treeLog',
    response: 'treeLogResult',
  },
  listLogRequests: {
    path: '/hox.get.v1.log_request_list',
    audit: false,
    summary: "Wait (bounded) for log requests addressed to the caller's compute node",
    auth: NODE,
    body: 'logRequestWait',
    response: 'logRequestList',
  },
  answerLogRequest: {
    path: '/hox.put.v1.log_request',
    audit: true,
    summary: 'Answer a log request addressed to this compute node',
    auth: NODE,
    body: 'logRequestAnswer',
    response: 'success',
  },
  pkiStatus: {
    path: '/hox.get.v1.pki_status',
    audit: false,
    summary: "The platform CA: its pin, roots, issuing CAs, revocations, and the answering master's certificate",
    auth: ADMIN,
    body: 'pkiStatus',
    response: 'pkiStatusResult',
  },
  rotatePki: {
    path: '/hox.post.v1.pki_rotation',
    audit: true,
    summary:
      'Rotate the platform CA (a new issuing CA, or a new root): new certificates come from it, the old ones stay valid until they expire',
    auth: ADMIN,
    body: 'pkiRotation',
    response: 'pkiStatusResult',
  },
  listAuditLog: {
    path: '/hox.allDocs.v1.audit_log',
    audit: false,
    summary:
      'Audit trail of mutating calls, oldest first (the newest `limit` matching); the admin reads every entry, a user only the calls it made',
    auth: PEOPLE,
    body: 'auditLog',
    response: 'auditLogResult',
  },
} as const satisfies Record<string, RouteSpec>;

export type RouteName = keyof typeof ROUTES;
