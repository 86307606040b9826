/**
 * Artifacts: binary uploads named by the SHA-256 of their bytes (an
 * application's source tarball for hyper_edge). They live in the store, so
 * every master process sharing a PostgreSQL store serves the same ones.
 *
 * PUT by people (admin, user); GET/HEAD by compute nodes, the admin and the
 * user who uploaded them. Outside the JSON route table: the body is raw bytes.
 */
import { createHash } from 'node:crypto';
import type { FastifyPluginCallback, FastifyRequest } from 'fastify';
import { HoxError } from '../../shared/errors.js';
import { authenticate, describePrincipal, type Principal } from '../principal.js';
import { bearer, type HttpServerOptions } from './server.js';

const SHA256 = /^[0-9a-f]{64}$/;
export const ARTIFACT_PATH = '/hox/v1/artifacts/:sha256';

/** A Fastify plugin: its own scope, so the raw-bytes parser never reaches the JSON routes. */
export function artifactRoutes(options: HttpServerOptions): FastifyPluginCallback {
  const { store, clock } = options;
  const limit = options.artifactLimitBytes ?? 256 * 1024 * 1024;

  const principalOf = (request: FastifyRequest): Promise<Principal> =>
    store.transaction((tx) => authenticate(tx, bearer(request), options.adminTokenHash, clock));

  const shaOf = (request: FastifyRequest): string => {
    const { sha256 } = request.params as { sha256: string };
    if (!SHA256.test(sha256))
      throw new HoxError('HOX_BAD_REQUEST', `artifact name '${sha256.slice(0, 80)}' is not a lowercase SHA-256`, {
        field: 'sha256',
      });
    return sha256;
  };

  return (scope, _opts, done) => {
    scope.addContentTypeParser('application/octet-stream', { parseAs: 'buffer', bodyLimit: limit }, (_r, body, next) =>
      next(null, body),
    );

    scope.put(ARTIFACT_PATH, { bodyLimit: limit }, async (request) => {
      const principal = await principalOf(request);
      if (principal.kind !== 'admin' && principal.kind !== 'user')
        throw new HoxError('HOX_FORBIDDEN', `${describePrincipal(principal)} may not upload artifacts`);
      const sha256 = shaOf(request);
      if (!Buffer.isBuffer(request.body))
        throw new HoxError('HOX_BAD_REQUEST', 'content-type must be application/octet-stream', {
          field: 'content-type',
        });
      const actual = createHash('sha256').update(request.body).digest('hex');
      if (actual !== sha256)
        throw new HoxError('HOX_BAD_REQUEST', `the body's SHA-256 is ${actual}, not ${sha256}`, { field: 'sha256' });
      await store.putArtifact(
        {
          sha256,
          ownerId: principal.kind === 'user' ? principal.userId : 'admin',
          sizeBytes: request.body.length,
          createdAtMs: clock.nowMs(),
        },
        request.body,
      );
      return { sha256, size_bytes: request.body.length };
    });

    const read = async (request: FastifyRequest) => {
      const principal = await principalOf(request);
      const sha256 = shaOf(request);
      const row = await store.getArtifact(sha256);
      const visible =
        row !== undefined &&
        (principal.kind === 'admin' ||
          principal.kind === 'node' ||
          (principal.kind === 'user' && principal.userId === row.ownerId));
      if (!visible) throw new HoxError('HOX_NOT_FOUND', `artifact ${sha256} not found`);
      return row;
    };
    scope.get(ARTIFACT_PATH, { exposeHeadRoute: false }, async (request, reply) => {
      const row = await read(request);
      const content = await store.readArtifact(row.sha256);
      if (content === undefined) throw new HoxError('HOX_NOT_FOUND', `artifact ${row.sha256} not found`);
      return reply.type('application/octet-stream').send(Buffer.from(content));
    });
    scope.head(ARTIFACT_PATH, async (request, reply) => {
      const row = await read(request);
      return reply.type('application/octet-stream').header('content-length', row.sizeBytes).send();
    });
    done();
  };
}
