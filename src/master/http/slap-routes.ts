/**
 * The slap protocol: the HTTP API SlapOS's Python library (`slapos.slap`), its node (`slapgrid`, `slapos node
 * format/software/instance/report`) and `slapos request` speak to a master (docs/slapos.md). GET with a query or
 * POST with a form, at `/<name>`; objects answered as xml_marshaller XML (src/master/slap/).
 *
 * Every endpoint is the same operation as a JSON route, on the same domain code, in one audited transaction: a
 * SlapOS node and our agent cannot disagree about what a call means. Callers authenticate with a bearer token
 * or, as SlapOS's clients do, with the client certificate the platform issued them (a node's, an instance's or a user's).
 * Answers as SlapOS's master gives them: `text/xml` marshal for objects, `None` or `OK` for reports; 404 for
 * what does not exist and 408 while a requested instance waits for a partition, the two statuses slap.py tells
 * apart.
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { HoxError } from '../../shared/errors.js';
import type { IpAddress, PartitionRow } from '../../store/store.js';
import type { OpContext } from '../context.js';
import { instanceCertificate } from '../pki/holder-certificates.js';
import {
  bangInstance,
  publishConnectionParameters,
  renameInstance,
  reportInstanceError,
  reportInstanceState,
} from '../instances.js';
import { accessStatus, type InstanceDocument } from '../instance-view.js';
import { bangNode, formatNode, loadNode, nodeStatus, reportUsage, touchNode } from '../nodes.js';
import { requestInstance } from '../requests.js';
import { listSoftware, reportSoftwareError, reportSoftwareState, supply } from '../software.js';
import { isPyDict, isPyList, loads, dumps, pyDict, type PyValue } from '../slap/xml-marshaller.js';
import { buildComputer, buildSoftwareInstance, type AllocatedInstance } from '../slap/slap-objects.js';
import { allocatedInstance, partitionObject, toJsonObject, toSlapParameters } from '../slap/slap-view.js';
import type { HandlerEnv } from './handlers.js';
import type { OpRunner, OpSpec } from './op-runner.js';

type Fields = Record<string, string | undefined>;
/** What an endpoint answers; `not-ready` is SlapOS's 408 for a request accepted but not placed (it commits). */
type Answer = { type: 'xml'; value: PyValue } | { type: 'text'; text: string } | { type: 'not-ready'; text: string };

interface SlapEndpoint {
  method: 'GET' | 'POST';
  /** Appended to the audit trail (every call that may change something or issues a credential). */
  audit: boolean;
  auth: OpSpec['auth'];
  exclusive?: boolean;
  mayMakeRoom?: boolean;
  handle(ctx: OpContext, fields: Fields, env: HandlerEnv): Promise<Answer>;
}

const NODE = ['admin', 'node'] as const;
const PARTITION = ['admin', 'node', 'instance'] as const;
const REQUESTERS = ['admin', 'user', 'node', 'instance'] as const;

/** What SlapOS's master answers a report with (its Python returns None). */
const NONE: Answer = { type: 'text', text: 'None' };
const xml = (value: PyValue): Answer => ({ type: 'xml', value });

/** An optional field; slap.py sends the literal `None` for an absent one (SlapOS's master reads any case). */
const optional = (fields: Fields, name: string): string | undefined => {
  const value = fields[name];
  return value === undefined || value === '' || value.toLowerCase() === 'none' ? undefined : value;
};
/** A required field. */
function field(fields: Fields, name: string): string {
  const value = optional(fields, name);
  if (value === undefined) throw new HoxError('HOX_BAD_REQUEST', `${name}: required`, { field: name });
  return value;
}

/** A marshalled field, decoded (an absent one is undefined). */
const marshalled = (fields: Fields, name: string): PyValue | undefined =>
  fields[name] === undefined ? undefined : loads(fields[name], { field: name });

/** The partition (computer_id, computer_partition_id) names, seen by a caller who may see that node or instance. */
async function loadPartition(ctx: OpContext, nodeId: string, partitionId: string): Promise<PartitionRow> {
  if (ctx.principal.kind !== 'instance') await loadNode(ctx, nodeId);
  const partition = await ctx.tx.getPartition(nodeId, partitionId);
  if (partition === undefined)
    throw new HoxError('HOX_PARTITION_NOT_FOUND', `partition '${partitionId}' not found on compute node '${nodeId}'`);
  if (ctx.principal.kind === 'instance' && partition.instanceId !== ctx.principal.instanceId)
    throw new HoxError(
      'HOX_FORBIDDEN',
      `instance '${ctx.principal.instanceId}' does not run on '${nodeId}/${partitionId}'`,
    );
  return partition;
}

/** The shared instance `reference` names, which must be hosted by `hostId` (the partition the call names). */
async function sharedOn(ctx: OpContext, hostId: string, reference: string): Promise<string> {
  const shared = await ctx.tx.getInstance(reference);
  if (shared?.hostInstanceId !== hostId)
    throw new HoxError('HOX_INSTANCE_NOT_FOUND', `no shared instance '${reference}' on this partition`, {
      field: 'slave_reference',
    });
  return shared.id;
}

/** The instance on the partition a partition-level call names. */
async function instanceOn(ctx: OpContext, fields: Fields): Promise<string> {
  const nodeId = field(fields, 'computer_id');
  const partitionId = field(fields, 'computer_partition_id');
  const partition = await loadPartition(ctx, nodeId, partitionId);
  if (partition.instanceId === null)
    throw new HoxError('HOX_INSTANCE_NOT_FOUND', `no instance on partition '${nodeId}/${partitionId}'`);
  return partition.instanceId;
}

const reportSoftware =
  (state: 'building' | 'available' | 'destroyed'): SlapEndpoint['handle'] =>
  async (ctx, f) => {
    await reportSoftwareState(ctx, field(f, 'computer_id'), field(f, 'url'), state);
    return NONE;
  };

const reportPartition =
  (state: 'started' | 'stopped' | 'destroyed'): SlapEndpoint['handle'] =>
  async (ctx, f) => {
    await reportInstanceState(ctx, await instanceOn(ctx, f), state);
    return NONE;
  };

/** getFullComputerInformation: the node's software releases and partitions, what slapgrid acts on. */
async function computerInformation(ctx: OpContext, f: Fields): Promise<Answer> {
  const nodeId = field(f, 'computer_id');
  const node = await loadNode(ctx, nodeId);
  await touchNode(ctx, node);
  const partitions = [];
  for (const partition of await ctx.tx.listPartitions(nodeId)) partitions.push(await partitionObject(ctx, partition));
  const software = (await listSoftware(ctx, nodeId)).map((s) => ({ url: s.url, requestedState: s.requestedState }));
  return xml(buildComputer({ computerId: nodeId, softwareReleases: software, partitions }));
}

/**
 * requestComputerPartition: from a partition (its instance requests a child), or from a person (a root). The
 * answer is the instance once it is placed, else 408: it waits, and the master places it once room appears.
 */
async function requestPartition(ctx: OpContext, f: Fields, env: HandlerEnv): Promise<Answer> {
  const requesterNode = optional(f, 'computer_id');
  const requesterPartition = optional(f, 'computer_partition_id');
  if (requesterNode !== undefined && requesterPartition !== undefined) {
    const instanceId = await instanceOn(ctx, f);
    // A node asks on behalf of the instance it runs there, as slapgrid's recipes do with its certificate.
    if (ctx.principal.kind !== 'instance') ctx = { ...ctx, principal: { kind: 'instance', instanceId } };
  } else if (ctx.principal.kind === 'node' || ctx.principal.kind === 'instance')
    throw new HoxError('HOX_BAD_REQUEST', 'computer_id and computer_partition_id: required of a node or an instance', {
      field: 'computer_partition_id',
    });
  const state = marshalled(f, 'state') ?? null;
  if (state !== null && state !== 'started' && state !== 'stopped' && state !== 'destroyed')
    throw new HoxError('HOX_BAD_REQUEST', 'state: must be started, stopped or destroyed', { field: 'state' });
  const shared = marshalled(f, 'shared_xml') ?? false;
  if (typeof shared !== 'boolean')
    throw new HoxError('HOX_BAD_REQUEST', 'shared_xml: must be a marshalled bool', { field: 'shared_xml' });
  const softwareType = optional(f, 'software_type');
  if (softwareType !== undefined && softwareType.length > 200)
    throw new HoxError('HOX_BAD_REQUEST', 'software_type: longer than 200 characters', { field: 'software_type' });
  const answer = await requestInstance(
    ctx,
    {
      title: field(f, 'partition_reference'),
      software_release_uri: field(f, 'software_release'),
      // Older clients send RootSoftwareInstance for "the default one".
      software_type: softwareType === undefined || softwareType === 'RootSoftwareInstance' ? 'default' : softwareType,
      parameters: toJsonObject(marshalled(f, 'partition_parameter_xml'), 'partition_parameter_xml'),
      sla_parameters: toJsonObject(marshalled(f, 'filter_xml'), 'filter_xml'),
      ...(state === null ? {} : { state }),
      shared,
    },
    env.internalSoftwareTypes,
  );
  if ('status' in answer) return { type: 'not-ready', text: answer.message };
  const instance = await ctx.tx.getInstance(answer.instance_guid);
  // Destroyed and already forgotten (shared, or never placed): the answer is all there is.
  if (instance === undefined) return xml(buildSoftwareInstance(fromDocument(answer)));
  if (!instance.shared) {
    const partition =
      instance.nodeId === null || instance.partitionId === null
        ? undefined
        : await ctx.tx.getPartition(instance.nodeId, instance.partitionId);
    if (partition === undefined) return xml(buildSoftwareInstance(fromDocument(answer)));
    return xml(buildSoftwareInstance(await allocatedInstance(ctx, instance, partition)));
  }
  // A shared instance answers from its host's partition (ids, addresses), with its own tree, parameters and
  // connection parameters; the host's own shared instances are none of its business.
  return xml(buildSoftwareInstance(fromDocument(answer)));
}

/** The answer of a request from our instance document (a shared instance's carries its host's placement). */
function fromDocument(doc: InstanceDocument): AllocatedInstance {
  return {
    computerId: doc.computer_guid,
    partitionId: doc.compute_partition_id,
    softwareReleaseUrl: doc.software_release_uri,
    softwareType: doc.software_type,
    instanceGuid: doc.instance_guid,
    instanceTitle: doc.title,
    rootInstanceTitle: doc.root_instance_title,
    requestedState: doc.state,
    parameters: toSlapParameters(doc.parameters),
    connection: toSlapParameters(doc.connection_parameters),
    filter: toSlapParameters(doc.sla_parameters),
    ipList: doc.ip_list.map(([iface, address]) => [iface ?? '', address ?? ''] as const),
    sharedInstances: [],
    timestamp: BigInt(Math.trunc(doc.processing_timestamp)),
  };
}

/** The JSON route's bounds (computeNodeFormat). */
const MAX_PARTITIONS = 10_000;
const MAX_ADDRESSES = 64;

/** loadComputerConfigurationFromXML (`slapos node format`): the partitions and their addresses. */
async function loadConfiguration(ctx: OpContext, f: Fields): Promise<Answer> {
  const config = marshalled(f, 'xml');
  if (config === undefined || !isPyDict(config))
    throw new HoxError('HOX_BAD_REQUEST', 'xml: must be a marshalled dictionary', { field: 'xml' });
  const reference = config.get('reference');
  if (typeof reference !== 'string') throw new HoxError('HOX_BAD_REQUEST', 'xml: reference required', { field: 'xml' });
  const list = config.get('partition_list') ?? [];
  if (!isPyList(list) || list.length > MAX_PARTITIONS)
    throw new HoxError('HOX_BAD_REQUEST', `xml: partition_list must be a list of at most ${MAX_PARTITIONS}`, {
      field: 'xml',
    });
  const partitions = list.map((p, i) => {
    const at = `xml.partition_list.${i}`;
    if (!isPyDict(p) || typeof p.get('reference') !== 'string')
      throw new HoxError('HOX_BAD_REQUEST', `${at}: must be a dictionary with a reference`, { field: 'xml' });
    const tap = p.get('tap');
    const tapName =
      tap !== undefined && isPyDict(tap) && typeof tap.get('name') === 'string' ? (tap.get('name') as string) : '';
    const addresses = p.get('address_list') ?? [];
    if (isPyList(addresses) && addresses.length > MAX_ADDRESSES)
      throw new HoxError('HOX_BAD_REQUEST', `${at}: at most ${MAX_ADDRESSES} addresses`, { field: 'xml' });
    const ipList: IpAddress[] = (isPyList(addresses) ? addresses : []).flatMap((a) => {
      if (!isPyDict(a) || typeof a.get('addr') !== 'string') return [];
      const netmask = a.get('netmask');
      return [
        {
          'ip-address': a.get('addr') as string,
          'network-interface': tapName || (p.get('reference') as string),
          ...(typeof netmask === 'string' ? { netmask } : {}),
        },
      ];
    });
    return { partition_id: p.get('reference') as string, ip_list: ipList };
  });
  await formatNode(ctx, reference, partitions);
  return { type: 'text', text: 'Content properly posted.' };
}

/** A status dictionary, as getComputerStatus answers it (SlapOS's fields). */
async function computerStatus(ctx: OpContext, f: Fields): Promise<Answer> {
  const status = await nodeStatus(ctx, field(f, 'computer_id'));
  const keys = ['created_at', 'no_data', 'no_data_since_15_minutes', 'no_data_since_5_minutes', 'portal_type'];
  const out: Record<string, PyValue> = {};
  for (const key of [...keys, 'reference', 'since', 'state', 'text', 'user']) {
    const value = (status as unknown as Record<string, unknown>)[key];
    if (typeof value === 'string') out[key] = value;
    else if (typeof value === 'number') out[key] = BigInt(value);
  }
  return xml(pyDict(out));
}

export const SLAP_ENDPOINTS: Record<string, SlapEndpoint> = {
  getFullComputerInformation: { method: 'GET', audit: false, auth: NODE, handle: computerInformation },
  getComputerInformation: { method: 'GET', audit: false, auth: NODE, handle: computerInformation },
  getComputerStatus: { method: 'GET', audit: false, auth: NODE, handle: computerStatus },
  loadComputerConfigurationFromXML: {
    method: 'POST',
    audit: true,
    auth: NODE,
    exclusive: true,
    mayMakeRoom: true,
    handle: loadConfiguration,
  },
  buildingSoftwareRelease: { method: 'POST', audit: true, auth: NODE, handle: reportSoftware('building') },
  availableSoftwareRelease: { method: 'POST', audit: true, auth: NODE, handle: reportSoftware('available') },
  destroyedSoftwareRelease: { method: 'POST', audit: true, auth: NODE, handle: reportSoftware('destroyed') },
  softwareReleaseError: {
    method: 'POST',
    audit: true,
    auth: NODE,
    handle: async (ctx, f) => {
      await reportSoftwareError(ctx, field(f, 'computer_id'), field(f, 'url'), f.error_log ?? '');
      return NONE;
    },
  },
  supplySupply: {
    method: 'POST',
    audit: true,
    auth: ['admin'],
    mayMakeRoom: true,
    handle: async (ctx, f) => {
      const state = optional(f, 'state') ?? 'available';
      if (state !== 'available' && state !== 'destroyed')
        throw new HoxError('HOX_BAD_REQUEST', 'state: must be available or destroyed', { field: 'state' });
      await supply(ctx, field(f, 'computer_id'), field(f, 'url'), state);
      return NONE;
    },
  },
  computerBang: {
    method: 'POST',
    audit: true,
    auth: NODE,
    handle: async (ctx, f) => {
      await bangNode(ctx, field(f, 'computer_id'), f.message ?? '');
      return NONE;
    },
  },
  useComputer: {
    method: 'POST',
    audit: true,
    auth: NODE,
    handle: async (ctx, f) => {
      await reportUsage(ctx, field(f, 'computer_id'), f.use_string ?? '');
      return { type: 'text', text: 'OK' };
    },
  },
  registerComputerPartition: {
    method: 'GET',
    audit: false,
    auth: PARTITION,
    handle: async (ctx, f) => {
      const partition = await loadPartition(
        ctx,
        field(f, 'computer_reference'),
        field(f, 'computer_partition_reference'),
      );
      return xml(await partitionObject(ctx, partition, { synced: true }));
    },
  },
  requestComputerPartition: {
    method: 'POST',
    audit: true,
    auth: REQUESTERS,
    exclusive: true,
    mayMakeRoom: true,
    handle: requestPartition,
  },
  setComputerPartitionConnectionXml: {
    method: 'POST',
    audit: true,
    auth: PARTITION,
    handle: async (ctx, f) => {
      const own = await instanceOn(ctx, f);
      const connection = toJsonObject(marshalled(f, 'connection_xml'), 'connection_xml');
      const slave = optional(f, 'slave_reference');
      await publishConnectionParameters(ctx, slave === undefined ? own : await sharedOn(ctx, own, slave), connection);
      return NONE;
    },
  },
  startedComputerPartition: { method: 'POST', audit: true, auth: PARTITION, handle: reportPartition('started') },
  stoppedComputerPartition: { method: 'POST', audit: true, auth: PARTITION, handle: reportPartition('stopped') },
  destroyedComputerPartition: {
    method: 'POST',
    audit: true,
    auth: PARTITION,
    mayMakeRoom: true,
    handle: reportPartition('destroyed'),
  },
  softwareInstanceError: {
    method: 'POST',
    audit: true,
    auth: PARTITION,
    handle: async (ctx, f) => {
      await reportInstanceError(ctx, await instanceOn(ctx, f), f.error_log ?? '');
      return NONE;
    },
  },
  softwareInstanceBang: {
    method: 'POST',
    audit: true,
    auth: PARTITION,
    handle: async (ctx, f) => {
      await bangInstance(ctx, await instanceOn(ctx, f), f.message ?? '');
      return { type: 'text', text: 'OK' };
    },
  },
  softwareInstanceRename: {
    method: 'POST',
    audit: true,
    auth: ['admin', 'instance'],
    handle: async (ctx, f) => {
      const own = await instanceOn(ctx, f);
      const slave = optional(f, 'slave_reference');
      await renameInstance(ctx, slave === undefined ? own : await sharedOn(ctx, own, slave), field(f, 'new_name'));
      return NONE;
    },
  },
  getComputerPartitionCertificate: {
    method: 'GET',
    audit: true,
    auth: PARTITION,
    handle: async (ctx, f) => xml(pyDict(await instanceCertificate(ctx, await instanceOn(ctx, f)))),
  },
  getComputerPartitionStatus: {
    method: 'GET',
    audit: false,
    auth: PARTITION,
    handle: async (ctx, f) => {
      const instance = await ctx.tx.getInstance(await instanceOn(ctx, f));
      if (instance === undefined) throw new HoxError('HOX_INSTANCE_NOT_FOUND', 'instance not found');
      return xml(pyDict({ portal_type: 'Software Instance', reference: instance.id, text: accessStatus(instance) }));
    },
  },
  updateComputerPartitionRelatedInstanceList: {
    method: 'POST',
    audit: false,
    auth: PARTITION,
    // SlapOS's master ignores it too: who requested what is known from the requests themselves.
    handle: async (ctx, f) => {
      await instanceOn(ctx, f);
      return NONE;
    },
  },
  getHateoasUrl: {
    method: 'GET',
    audit: false,
    auth: ['admin', 'user', 'node', 'instance'],
    handle: async (_ctx, _f, env) => Promise.resolve({ type: 'text', text: env.baseUrl }),
  },
};

/** Whether `url` is one of the slap protocol's endpoints (answers and errors of its own kind). */
export function isSlapPath(url: string): boolean {
  const name = (url.split('?')[0] ?? '').slice(1);
  return Object.hasOwn(SLAP_ENDPOINTS, name);
}

/** The status of a refusal, as slap.py tells them apart: 404 for what does not exist, else the catalogue's. */
export function slapErrorStatus(error: HoxError): number {
  if (/_NOT_FOUND$/.test(error.code)) return 404;
  return error.status;
}

/** The JSON routes' bounds, for the same values: marshalled documents and usage reports, anything else. */
const LARGE_FIELDS = new Set(['xml', 'partition_parameter_xml', 'filter_xml', 'connection_xml', 'use_string']);
const MAX_LARGE_FIELD = 1024 * 1024;
const MAX_FIELD = 64 * 1024;

/** Form bodies and query strings: a field given twice is refused rather than guessed, a long one too. */
function fieldsOf(source: unknown): Fields {
  if (source === null || typeof source !== 'object') return {};
  const out: Fields = Object.create(null) as Fields;
  for (const [k, v] of Object.entries(source as Record<string, unknown>)) {
    if (typeof v !== 'string') throw new HoxError('HOX_BAD_REQUEST', `${k}: given more than once`, { field: k });
    const max = LARGE_FIELDS.has(k) ? MAX_LARGE_FIELD : MAX_FIELD;
    if (v.length > max) throw new HoxError('HOX_BAD_REQUEST', `${k}: longer than ${max} characters`, { field: k });
    out[k] = v;
  }
  return out;
}

function send(reply: FastifyReply, answer: Answer): FastifyReply {
  if (answer.type === 'not-ready')
    return reply.status(408).header('cache-control', 'private').type('text/plain; charset=utf-8').send(answer.text);
  void reply.header('cache-control', 'no-cache');
  if (answer.type === 'text') return reply.type('text/plain; charset=utf-8').send(answer.text);
  return reply.type('text/xml; charset=utf-8').send(dumps(answer.value));
}

export function slapRoutes(options: { run: OpRunner; env: HandlerEnv }): FastifyPluginAsync {
  return async (app) => {
    // slap.py posts forms; here only (the JSON routes accept JSON alone).
    app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_request, body, done) => {
      // Before authentication: linear work, and a field given twice is refused rather than guessed.
      const out: Record<string, string> = Object.create(null) as Record<string, string>;
      for (const [k, v] of new URLSearchParams(body as string)) {
        if (k in out) return done(new HoxError('HOX_BAD_REQUEST', `${k}: given more than once`, { field: k }));
        out[k] = v;
      }
      done(null, out);
    });
    for (const [name, endpoint] of Object.entries(SLAP_ENDPOINTS)) {
      const handler = async (request: FastifyRequest, reply: FastifyReply) => {
        const fields = fieldsOf(endpoint.method === 'GET' ? request.query : request.body);
        const answer = await options.run(
          request,
          {
            path: `/${name}`,
            auth: endpoint.auth,
            certificateAuth: true,
            ...(endpoint.exclusive === true ? { exclusive: true } : {}),
            ...(endpoint.mayMakeRoom === true ? { mayMakeRoom: true } : {}),
          },
          (ctx) => endpoint.handle(ctx, fields, options.env),
        );
        return send(reply, answer);
      };
      app.route({
        method: endpoint.method,
        url: `/${name}`,
        config: { audit: endpoint.audit, auditAction: `slap.${name}` },
        handler,
      });
    }
    return Promise.resolve();
  };
}
