/**
 * One handler per route: unpack the (already validated) body, call the
 * domain, shape the answer. No I/O here besides the transaction it is given.
 */
import { listAlerts, reportAlerts } from '../alerts.js';
import type { Body, BodyName } from '../../protocol/schemas.js';
import type { RouteName } from '../../protocol/routes.js';
import type { ROUTES } from '../../protocol/routes.js';
import { listAuditLog } from '../audit-trail.js';
import type { OpContext } from '../context.js';
import {
  bangInstance,
  getInstance,
  getPartition,
  getTreeRoot,
  issueInstanceToken,
  listHostedInstances,
  listNodeInstances,
  listPartitionDocuments,
  listTreeTitles,
  publishConnectionParameters,
  renameInstance,
  reportInstanceError,
  reportInstanceState,
} from '../instances.js';
import {
  bangNode,
  createRegistrationToken,
  formatNode,
  listNodes,
  loadNode,
  nodeStatus,
  registerNode,
  reportUsage,
} from '../nodes.js';
import type { InternalSoftwareTypes } from '../internal-types.js';
import { answerLogRequest } from '../log-relay.js';
import { HoxError } from '../../shared/errors.js';
import { instanceCertificate, issueHolderCertificate, revokeHolderCertificates } from '../pki/holder-certificates.js';
import { issueSiteCertificate } from '../pki/site-certificates.js';
import { pkiStatus, rotatePki, type PkiHandlerEnv } from '../pki/pki-admin.js';
import { assertNodeAccess, type Principal } from '../principal.js';
import { reportPartitionUsage } from '../partition-usage.js';
import { reportPromiseResults } from '../promise-report.js';
import { requestInstance } from '../requests.js';
import { listSoftware, reportSoftwareError, reportSoftwareState, supply } from '../software.js';
import { listRetainedSets, reportRetainedSet, reportRetainedSets } from '../retained-sets.js';
import { listTreeStatus } from '../tree-status.js';
import { createUser, createUserToken, listUsers } from '../users.js';

type ResponseOf<R extends RouteName> = Body<(typeof ROUTES)[R]['response'] & BodyName>;
type BodyOf<R extends RouteName> = Body<(typeof ROUTES)[R]['body'] & BodyName>;

export interface HandlerEnv {
  /** Public base URL of this master, for `hateoas_url`. */
  baseUrl: string;
  /** Software types only their release's own instances may request. @default none */
  internalSoftwareTypes?: InternalSoftwareTypes;
  /** The platform CA's routes (`hox pki`). */
  pki: PkiHandlerEnv;
}

export type Handler<R extends RouteName> = (ctx: OpContext, body: BodyOf<R>, env: HandlerEnv) => Promise<ResponseOf<R>>;

const ok = (title: string) => ({ type: 'success' as const, title });

function whoami(p: Principal): ResponseOf<'whoami'> {
  switch (p.kind) {
    case 'admin':
      return { kind: 'admin', subject: null };
    case 'user':
      return { kind: 'user', subject: p.userId };
    case 'node':
      return { kind: 'node', subject: p.nodeId };
    case 'instance':
      return { kind: 'instance', subject: p.instanceId };
    case 'registration':
      return { kind: 'registration', subject: null };
  }
}

/** Handlers for every route but those that wait (server.ts), which must not hold a transaction while they wait. */
export const HANDLERS: {
  [R in Exclude<RouteName, 'waitForChange' | 'readTreeLogs' | 'listLogRequests' | 'queryMetrics'>]: Handler<R>;
} = {
  supply: async (ctx, b) => {
    await supply(ctx, b.computer_guid, b.software_release_uri, b.state ?? 'available');
    return ok('State changed');
  },
  listSoftwareInstallations: async (ctx, b) => ({
    result_list: (await listSoftware(ctx, b.computer_guid)).map((s) => ({
      software_release_uri: s.url,
      state: s.requestedState,
    })),
  }),
  reportSoftwareState: async (ctx, b) => {
    await reportSoftwareState(ctx, b.computer_guid, b.software_release_uri, b.reported_state);
    return ok('State reported');
  },
  reportSoftwareError: async (ctx, b) => {
    await reportSoftwareError(ctx, b.computer_guid, b.software_release_uri, b.message);
    return ok('Error reported');
  },
  formatNode: async (ctx, b) => {
    await formatNode(ctx, b.computer_guid, b.compute_partition_list);
    return ok('Formatted');
  },
  nodeStatus: (ctx, b) => nodeStatus(ctx, b.computer_guid),
  bangNode: async (ctx, b) => {
    await bangNode(ctx, b.computer_guid, b.message);
    return ok('Bang handled');
  },
  reportUsage: async (ctx, b) => {
    await reportUsage(ctx, b.computer_guid, b.tioxml);
    return ok('Usage reported');
  },
  nodeCertificate: async (ctx, b) => {
    await loadNode(ctx, b.computer_guid);
    return await issueHolderCertificate(ctx, 'compute-node', b.computer_guid);
  },
  removeNodeCertificate: async (ctx, b) => {
    await loadNode(ctx, b.computer_guid);
    const revoked = await revokeHolderCertificates(ctx, 'compute-node', b.computer_guid);
    return ok(revoked === 0 ? 'No certificate to remove' : 'Certificate removed');
  },
  listNodeInstances: async (ctx, b) => ({ result_list: await listNodeInstances(ctx, b.computer_guid) }),
  getPartition: (ctx, b) => getPartition(ctx, b.computer_guid, b.compute_partition_id),
  requestInstance: (ctx, b, env) => requestInstance(ctx, b, env.internalSoftwareTypes),
  getInstance: (ctx, b) => getInstance(ctx, b.instance_guid),
  listHostedInstances: async (ctx, b) => ({ result_list: await listHostedInstances(ctx, b.instance_guid) }),
  reportInstanceState: async (ctx, b) => {
    await reportInstanceState(ctx, b.instance_guid, b.reported_state);
    return ok('State reported');
  },
  reportInstanceError: async (ctx, b) => {
    await reportInstanceError(ctx, b.instance_guid, b.message);
    return ok('Error reported');
  },
  publishConnectionParameters: async (ctx, b) => {
    const changed = await publishConnectionParameters(ctx, b.instance_guid, b.connection_parameter_dict);
    return ok(changed ? 'connection parameter updated' : 'connection parameter not modified as identical');
  },
  bangInstance: async (ctx, b) => {
    await bangInstance(ctx, b.instance_guid, b.message);
    return ok('Bang handled');
  },
  renameInstance: async (ctx, b) => {
    await renameInstance(ctx, b.instance_guid, b.title);
    return ok('Title updated');
  },
  instanceCertificate: (ctx, b) => instanceCertificate(ctx, b.instance_guid),
  issueSiteCertificate: (ctx, b) => issueSiteCertificate(ctx, b),
  getInstanceTree: (ctx, b) => getTreeRoot(ctx, b.title),
  listInstanceTrees: async (ctx) => ({ result_list: await listTreeTitles(ctx) }),
  hateoasUrl: async (_ctx, _b, env) => Promise.resolve({ hateoas_url: env.baseUrl }),

  createRegistrationToken: (ctx, b) => createRegistrationToken(ctx, b.ttl_seconds ?? 86400),
  registerNode: (ctx, b) => registerNode(ctx, b),
  listNodes: async (ctx) => ({ result_list: await listNodes(ctx) }),
  listPartitionDocuments: async (ctx, b) => ({ result_list: await listPartitionDocuments(ctx, b.computer_guid) }),
  listSoftwareStatus: async (ctx, b) => ({
    result_list: (await listSoftware(ctx, b.computer_guid)).map((s) => ({
      software_release_uri: s.url,
      state: s.requestedState,
      reported_state: s.reportedState,
      error_message: s.errorMessage,
    })),
  }),
  issueInstanceToken: async (ctx, b) => ({
    instance_guid: b.instance_guid,
    token: await issueInstanceToken(ctx, b.instance_guid),
  }),
  reportPartitionUsage: async (ctx, b) => {
    const count = await reportPartitionUsage(ctx, b.computer_guid, b.partition_usage_list);
    return ok(`usage of ${count} partition${count === 1 ? '' : 's'} reported`);
  },
  reportNodeMetrics: async (ctx, b) => {
    await loadNode(ctx, b.computer_guid);
    await ctx.tx.putNodeMetrics({ nodeId: b.computer_guid, metrics: b.metrics, reportedAtMs: ctx.clock.nowMs() });
    return ok('node metrics reported');
  },
  reportAlerts: (ctx, b, env) => reportAlerts(ctx, b, env.internalSoftwareTypes),
  listAlerts: (ctx, b) => listAlerts(ctx, b),
  reportPromiseResults: async (ctx, b) => {
    const count = await reportPromiseResults(ctx, b.computer_guid, b.promise_report_list);
    return ok(`promises of ${count} partition${count === 1 ? '' : 's'} reported`);
  },
  reportRetainedSet: async (ctx, b) => {
    const { computer_guid: nodeId, ...report } = b;
    await reportRetainedSet(ctx, nodeId, report);
    return ok(`retained set of instance '${b.instance_guid}' reported`);
  },
  reportRetainedSets: async (ctx, b) => {
    const { kept, forgotten } = await reportRetainedSets(ctx, b.computer_guid, b.retained_list);
    return ok(`${kept} retained set${kept === 1 ? '' : 's'} kept, ${forgotten} forgotten`);
  },
  listRetainedSets: async (ctx, b) => ({ result_list: await listRetainedSets(ctx, b.title) }),
  createUser: (ctx, b) => createUser(ctx, b.name),
  createUserToken: (ctx, b) => createUserToken(ctx, b.name),
  listUsers: async (ctx) => ({ result_list: await listUsers(ctx) }),
  issueUserCertificate: async (ctx) => {
    if (ctx.principal.kind !== 'user') throw new HoxError('HOX_FORBIDDEN', 'only a user has a user certificate');
    return await issueHolderCertificate(ctx, 'user', ctx.principal.userId);
  },
  whoami: (ctx) => Promise.resolve(whoami(ctx.principal)),
  listTreeStatus: async (ctx, b) => ({ result_list: await listTreeStatus(ctx, b.title) }),
  listAuditLog: async (ctx, b) => ({ result_list: await listAuditLog(ctx, b) }),
  pkiStatus: (ctx, _b, env) => pkiStatus(ctx, env.pki),
  rotatePki: (ctx, b, env) => rotatePki(ctx, b.what, env.pki),
  answerLogRequest: async (ctx, b) => {
    assertNodeAccess(ctx.principal, b.computer_guid);
    await answerLogRequest(ctx.tx, ctx.clock, b);
    return ok('log request answered');
  },
};
