/**
 * Artifacts: binary uploads named by the SHA-256 of their bytes (an
 * application's source tarball for hyper_edge). They live in the store, so
 * every master process sharing a PostgreSQL store serves the same ones.
 * Outside the JSON route table: the body is raw bytes.
 *
 * What this edge upholds:
 * - Nothing is read from an upload before its caller is known and may upload
 *   it: the token, the name, the content type, the declared length and the
 *   owner's quota are checked in `onRequest`, before Fastify touches the
 *   body. An answer given before the body arrived closes the connection, so
 *   the rest is never read.
 * - An upload is streamed: hashed as it arrives, stopped at the size limit
 *   or when the owner's stored plus in-flight bytes pass the quota.
 * - An artifact belongs to each owner who uploaded it (a claim: see
 *   src/store/artifact-store.ts). A user reads only its own; an instance
 *   reads those of its tree's owner and the admin's (the agent fetches them
 *   as the instance); a compute node's own token reads none; the admin reads
 *   all. Not yours is answered as not found.
 */
import { createHash, type Hash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { FastifyPluginCallback, FastifyRequest } from 'fastify';
import { HoxError } from '../../shared/errors.js';
import type { StoreTx } from '../../store/store.js';
import { ARTIFACT_DEFAULTS } from '../artifact-collector.js';
import { ADMIN_OWNER_ID, authenticate, describePrincipal, type Principal } from '../principal.js';
import type { AuditRecorder } from './audit-recorder.js';
import { bearer } from './bearer.js';
import { errorBody, toHoxError, type HttpServerOptions } from './server.js';

const SHA256 = /^[0-9a-f]{64}$/;
export const ARTIFACT_PATH = '/hox/v1/artifacts/:sha256';
const CONTENT_TYPE = 'application/octet-stream';

/** What `onRequest` established about an upload, for its handler. */
interface Upload {
  sha256: string;
  ownerId: string;
  /** Bytes the owner may still add (stored and other uploads in flight aside); `null`: no bound. */
  quotaBytes: number | null;
  /** The owner's stored bytes when the upload started. */
  storedBytes: number;
}

/** A Fastify plugin: its own scope, so the raw-bytes parser and the early checks never reach the JSON routes. */
export function artifactRoutes(options: HttpServerOptions, audit: AuditRecorder): FastifyPluginCallback {
  const { store, clock } = options;
  const { limitBytes: limit, quotaBytes: quota } = options.artifacts ?? ARTIFACT_DEFAULTS;
  const principals = new WeakMap<FastifyRequest, Principal>();
  const uploads = new WeakMap<FastifyRequest, Upload>();
  /** Bytes received but not yet stored, per owner (this master process). */
  const inFlight = new Map<string, number>();
  const addInFlight = (ownerId: string, bytes: number): number => {
    const total = (inFlight.get(ownerId) ?? 0) + bytes;
    if (total === 0) inFlight.delete(ownerId);
    else inFlight.set(ownerId, total);
    return total;
  };

  const shaOf = (request: FastifyRequest): string => {
    const { sha256 } = request.params as { sha256: string };
    if (!SHA256.test(sha256))
      throw new HoxError('HOX_BAD_REQUEST', `artifact name '${sha256.slice(0, 80)}' is not a lowercase SHA-256`, {
        field: 'sha256',
      });
    return sha256;
  };

  /** Everything an upload needs checked before a byte of its body is read. */
  const admitUpload = async (request: FastifyRequest, principal: Principal): Promise<Upload> => {
    if (principal.kind !== 'admin' && principal.kind !== 'user')
      throw new HoxError('HOX_FORBIDDEN', `${describePrincipal(principal)} may not upload artifacts`);
    const sha256 = shaOf(request);
    const type = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== CONTENT_TYPE)
      throw new HoxError('HOX_BAD_REQUEST', `content-type must be ${CONTENT_TYPE}`, { field: 'content-type' });
    const declared = declaredLength(request);
    if (declared !== undefined && declared > limit) throw tooLarge(declared, limit);
    const ownerId = principal.kind === 'user' ? principal.userId : ADMIN_OWNER_ID;
    // The admin has no quota; an owner uploading what it already has adds nothing.
    const charged = principal.kind === 'user' && (await store.artifacts.get(sha256, ownerId)) === undefined;
    const upload: Upload = { sha256, ownerId, quotaBytes: charged ? quota : null, storedBytes: 0 };
    if (upload.quotaBytes !== null) {
      upload.storedBytes = await store.artifacts.usageBytes(ownerId);
      const wanted = upload.storedBytes + (inFlight.get(ownerId) ?? 0) + (declared ?? 0);
      if (wanted > upload.quotaBytes) throw quotaExceeded(sha256, ownerId, wanted, upload.quotaBytes);
    }
    return upload;
  };

  /** Who may read the artifact: throws HOX_FORBIDDEN / HOX_NOT_FOUND, answers its size. */
  const readable = async (principal: Principal, sha256: string): Promise<number> => {
    const notFound = (why = '') => new HoxError('HOX_NOT_FOUND', `artifact ${sha256} not found${why}`);
    switch (principal.kind) {
      case 'admin': {
        const size = await store.artifacts.sizeOf(sha256);
        if (size === undefined) throw notFound();
        return size;
      }
      case 'user': {
        const claim = await store.artifacts.get(sha256, principal.userId);
        if (claim === undefined) throw notFound();
        // Checking for one's artifact precedes using it (hox app deploy): the grace period starts again.
        await store.artifacts.touch(sha256, principal.userId, clock.nowMs());
        return claim.sizeBytes;
      }
      case 'instance': {
        const ownerId = await store.transaction((tx) => instanceOwner(tx, principal.instanceId));
        const claim =
          (ownerId === undefined ? undefined : await store.artifacts.get(sha256, ownerId)) ??
          (await store.artifacts.get(sha256, ADMIN_OWNER_ID));
        if (claim === undefined)
          throw notFound(
            ` for instance '${principal.instanceId}': its owner ('${ownerId ?? 'unknown'}') has not uploaded it`,
          );
        return claim.sizeBytes;
      }
      case 'node':
      case 'registration':
        throw new HoxError(
          'HOX_FORBIDDEN',
          `${describePrincipal(principal)} may not read artifacts (a node fetches them as the instance that needs them)`,
        );
    }
  };

  return (scope, _opts, done) => {
    scope.addHook('onRequest', async (request) => {
      const token = bearer(request);
      const principal = await store.transaction((tx) => authenticate(tx, token, options.adminTokenHash, clock));
      principals.set(request, principal);
      audit.notePrincipal(request, principal);
      if (request.method === 'PUT') uploads.set(request, await admitUpload(request, principal));
    });

    // The body reaches the handler as the raw stream: it is read there, bounded, or not at all.
    scope.addContentTypeParser(CONTENT_TYPE, (_request, payload, next) => next(null, payload));

    // An answer given while the body is still coming closes the connection: the rest is never read.
    scope.setErrorHandler((error, request, reply) => {
      const hox = toHoxError(error);
      if (hox.code === 'HOX_INTERNAL') request.log.error({ err: error, url: request.url }, 'internal error');
      else request.log.info({ url: request.url, code: hox.code }, hox.message);
      if (!request.raw.complete) void reply.header('connection', 'close');
      void reply.status(hox.status).send(errorBody(hox));
    });

    // An upload is audited (its entry written as it is answered); reads are not.
    scope.put(
      ARTIFACT_PATH,
      { bodyLimit: limit, config: { audit: true, auditAction: 'uploadArtifact' } },
      async (request) => {
        const upload = uploads.get(request)!;
        const hash = createHash('sha256');
        let received = 0;
        try {
          const content = await receive(request.body as Readable | undefined, hash, (bytes) => {
            if (received + bytes > limit) throw tooLarge(received + bytes, limit);
            received += bytes;
            const pending = addInFlight(upload.ownerId, bytes);
            if (upload.quotaBytes !== null && upload.storedBytes + pending > upload.quotaBytes)
              throw quotaExceeded(upload.sha256, upload.ownerId, upload.storedBytes + pending, upload.quotaBytes);
          });
          const actual = hash.digest('hex');
          if (actual !== upload.sha256)
            throw new HoxError('HOX_BAD_REQUEST', `the body's SHA-256 is ${actual}, not ${upload.sha256}`, {
              field: 'sha256',
            });
          const now = clock.nowMs();
          const row = { sha256: actual, ownerId: upload.ownerId, sizeBytes: content.length, createdAtMs: now };
          await store.artifacts.put({ ...row, touchedAtMs: now }, content, upload.quotaBytes);
          return { sha256: actual, size_bytes: content.length };
        } finally {
          // Stored or refused: no longer in flight.
          addInFlight(upload.ownerId, -received);
        }
      },
    );

    scope.get(ARTIFACT_PATH, { exposeHeadRoute: false, config: { audit: false } }, async (request, reply) => {
      const sha256 = shaOf(request);
      await readable(principals.get(request)!, sha256);
      const content = await store.artifacts.read(sha256);
      if (content === undefined) throw new HoxError('HOX_NOT_FOUND', `artifact ${sha256} not found`);
      return reply.type(CONTENT_TYPE).send(Buffer.from(content.buffer, content.byteOffset, content.byteLength));
    });
    scope.head(ARTIFACT_PATH, { config: { audit: false } }, async (request, reply) => {
      const size = await readable(principals.get(request)!, shaOf(request));
      return reply.type(CONTENT_TYPE).header('content-length', size).send();
    });
    done();
  };
}

/** The owner of the instance's tree (`undefined` once the instance or its tree is gone). */
async function instanceOwner(tx: StoreTx, instanceId: string): Promise<string | undefined> {
  const instance = await tx.getInstance(instanceId);
  if (instance === undefined) return undefined;
  return (await tx.getTree(instance.treeId))?.ownerId;
}

function declaredLength(request: FastifyRequest): number | undefined {
  const header = request.headers['content-length'];
  if (header === undefined) return undefined;
  const length = Number(header);
  if (!Number.isSafeInteger(length) || length < 0)
    throw new HoxError('HOX_BAD_REQUEST', `content-length '${String(header).slice(0, 40)}' is not a byte count`, {
      field: 'content-length',
    });
  return length;
}

function tooLarge(bytes: number, limit: number): HoxError {
  return new HoxError(
    'HOX_BODY_TOO_LARGE',
    `artifact upload of ${bytes} bytes or more is over the limit of ${limit} bytes`,
  );
}

function quotaExceeded(sha256: string, ownerId: string, bytes: number, quota: number): HoxError {
  return new HoxError(
    'HOX_ARTIFACT_QUOTA_EXCEEDED',
    `artifact ${sha256} would take owner '${ownerId}' to ${bytes} bytes of artifacts, over the quota of ${quota} bytes`,
  );
}

/**
 * Reads the body, each chunk hashed and passed to `check` first (which throws to stop). Stopping leaves the
 * stream paused and unread, without destroying it: the error answer must still reach the client.
 */
function receive(stream: Readable | undefined, hash: Hash, check: (bytes: number) => void): Promise<Buffer> {
  if (stream === undefined) return Promise.resolve(Buffer.alloc(0));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const detach = () => {
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', onError);
      stream.off('close', onClose);
    };
    const stop = (error: unknown) => {
      detach();
      stream.pause();
      reject(error instanceof Error ? error : new Error(String(error)));
    };
    const onData = (chunk: Buffer) => {
      try {
        check(chunk.length);
      } catch (error) {
        stop(error);
        return;
      }
      hash.update(chunk);
      chunks.push(chunk);
    };
    const onEnd = () => {
      detach();
      resolve(Buffer.concat(chunks));
    };
    const onError = (error: Error) =>
      stop(new HoxError('HOX_BAD_REQUEST', 'the upload was interrupted', { field: 'body', cause: error }));
    const onClose = () => stop(new HoxError('HOX_BAD_REQUEST', 'the upload was interrupted', { field: 'body' }));
    stream.on('data', onData);
    stream.once('end', onEnd);
    stream.once('error', onError);
    stream.once('close', onClose);
  });
}
