/** The OpenAPI 3.1 document, generated from the route table and schemas: it cannot drift from what is served. */
import { ROUTES } from './routes.js';
import { Bodies, ErrorBody } from './schemas.js';
import { ERROR_CATALOGUE } from '../shared/errors.js';

/** Strips TypeBox's symbol keys and `$id`s so the schemas embed cleanly. */
function plain(schema: unknown): unknown {
  return JSON.parse(JSON.stringify(schema, (key, value: unknown) => (key === '$id' ? undefined : value)));
}

export function buildOpenApi(options: { serverUrl: string }): Record<string, unknown> {
  const paths: Record<string, unknown> = {};
  for (const [name, route] of Object.entries(ROUTES)) {
    paths[route.path] = {
      post: {
        operationId: name,
        summary: route.summary,
        description: `Accepted tokens: ${route.auth.join(', ')}.${route.audit ? ' Audited: each call is appended to the audit trail.' : ''}`,
        security: [{ bearer: [] }],
        requestBody: { required: true, content: { 'application/json': { schema: plain(Bodies[route.body]) } } },
        responses: {
          '200': { description: 'Success', content: { 'application/json': { schema: plain(Bodies[route.response]) } } },
          default: {
            description: 'Error',
            content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
          },
        },
      },
    };
  }
  paths['/health'] = {
    get: {
      operationId: 'health',
      summary: 'Liveness; no authentication',
      security: [],
      responses: {
        '200': {
          description: 'The master is up',
          content: {
            'application/json': {
              schema: { type: 'object', properties: { status: { const: 'ok' } }, required: ['status'] },
            },
          },
        },
      },
    },
  };
  paths['/openapi.json'] = {
    get: {
      operationId: 'openapi',
      summary: 'This document; no authentication',
      security: [],
      responses: {
        '200': { description: 'OpenAPI document', content: { 'application/json': { schema: { type: 'object' } } } },
      },
    },
  };
  return {
    openapi: '3.1.0',
    info: {
      title: 'HyperOpenX master API',
      version: '1.0.0',
      description:
        "SlapOS JSON API v0 (`slapos.*.v0.*`) plus HyperOpenX's own endpoints (`hox.*.v1.*`). Every endpoint is POST with a JSON body and a bearer token. Error codes: " +
        Object.keys(ERROR_CATALOGUE).join(', ') +
        '.',
    },
    servers: [{ url: options.serverUrl }],
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: { Error: plain(ErrorBody) },
    },
    paths,
  };
}
