/**
 * `demo`: the tiny built-in release for tests, examples and the first tour.
 *
 * - `default`: an HTTP service on the partition's address that answers a
 *   greeting, publishes its `url`, and promises `/health` answers 200.
 * - `slow-start`: the same, listening only after `delay_ms`.
 * - `crashloop`: a service that exits at once (supervision tests).
 * - `parent`: requests a `default` child and publishes the child's url.
 * - `frontend`: hosts shared instances, serving each under /<reference> and
 *   publishing its url per shared instance.
 */
import { defineRelease, type PartitionPlan, type ProfileInput } from '../../release-kit/types.js';
import { SERVER_SOURCE } from './server-source.js';

const greetingSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    greeting: { type: 'string', maxLength: 200, description: 'What the service answers' },
    delay_ms: { type: 'integer', minimum: 0, maximum: 60000, description: 'Wait before listening (slow-start)' },
  },
} as const;

const urlSchema = {
  type: 'object',
  required: ['url'],
  properties: { url: { type: 'string' } },
} as const;

function server(input: ProfileInput, options: { crash?: boolean; delayMs?: number } = {}): PartitionPlan {
  const port = input.partition.portBase;
  const url = `http://${input.partition.ip}:${port}/`;
  const greeting =
    typeof input.parameters.greeting === 'string' ? input.parameters.greeting : `hello from ${input.instance_title}`;
  const sites = input.slave_instance_list
    .filter((s) => s.state !== 'destroyed')
    .map((s) => ({
      reference: s.slave_reference,
      greeting: typeof s.parameters.greeting === 'string' ? s.parameters.greeting : `hello from ${s.slave_title}`,
    }));
  const config = {
    host: input.partition.ip,
    port,
    greeting,
    sites,
    crash: options.crash ?? false,
    delayMs: options.delayMs ?? 0,
  };
  return {
    files: [
      { path: 'server.mjs', content: SERVER_SOURCE, mode: 0o640 },
      { path: 'config.json', content: `${JSON.stringify(config, null, 2)}\n`, mode: 0o640 },
    ],
    services: [{ name: 'http', command: [input.tools.node, 'server.mjs'], stopTimeoutMs: 5000 }],
    promises: [
      {
        name: 'http-health',
        kind: 'http',
        url: `${url}health`,
        status: 200,
        bodyContains: 'ok',
        periodMs: 5000,
        timeoutMs: 2000,
      },
    ],
    publish: { url },
    publishShared: Object.fromEntries(sites.map((s) => [s.reference, { url: `${url}${s.reference}` }])),
  };
}

export default defineRelease({
  softwareTypes: {
    default: { parameters: greetingSchema, connection: urlSchema, profile: (input) => server(input) },
    'slow-start': {
      parameters: greetingSchema,
      connection: urlSchema,
      profile: (input) =>
        server(input, { delayMs: typeof input.parameters.delay_ms === 'number' ? input.parameters.delay_ms : 3000 }),
    },
    crashloop: {
      parameters: greetingSchema,
      connection: { type: 'object' },
      profile: (input) => ({ ...server(input, { crash: true }), publish: {} }),
    },
    parent: {
      parameters: greetingSchema,
      connection: { type: 'object', properties: { child_url: { type: 'string' } } },
      profile: (input) => {
        const child = input.requested.child;
        return {
          requests: [
            {
              title: 'child',
              softwareReleaseUrl: input.slap_software_release_url,
              softwareType: 'default',
              parameters: { greeting: `child of ${input.instance_title}` },
              state: input.state,
            },
          ],
          publish:
            child?.ready === true && typeof child.connectionParameters.url === 'string'
              ? { child_url: child.connectionParameters.url }
              : {},
        };
      },
    },
    frontend: { parameters: greetingSchema, connection: urlSchema, profile: (input) => server(input) },
  },
});
