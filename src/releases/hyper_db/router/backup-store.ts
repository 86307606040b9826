/**
 * The cluster's backup location, kept by the router in its own partition
 * (`backups/`), reachable by every member wherever it runs:
 *
 *   PUT  /wal/NAME            a WAL segment or history file (archive_command; peer token)
 *   GET  /wal/NAME            the same (restore_command; peer or backup token)
 *   GET  /backups             [BackupInfo] newest last (peer or backup token)
 *   GET  /backups/ID.tar      a verified base backup as a tar stream (peer or backup token)
 *   POST /tls/certificate     CertificateRequestBody → {certificate} (a member's server certificate; peer token)
 *   POST /pause               PauseRequestBody → PauseAnswer (read-write endpoint paused before a switchover; peer token)
 *
 * Base backups: `pg_basebackup` from the primary (plain format, WAL
 * included, checksummed manifest) into a temporary directory, checked with
 * `pg_verifybackup`, then renamed into place: a backup that is listed is
 * complete and verified. One at start once a primary exists, then every
 * `intervalMs`.
 */
import { execFile, spawn } from 'node:child_process';
import { randomUUID, timingSafeEqual } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { link, mkdir, open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { clientCertificateProblem, createTlsServer, renewTlsServer, type TlsIdentity } from '../cluster-tls.js';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { SUPERUSER, type MemberAddress, type PauseAnswer, type PauseRequestBody } from '../protocol.js';

const exec = promisify(execFile);
const WAL_NAME = /^[0-9A-F]{24}(\.partial|\.[0-9A-F]{8}\.backup)?$|^[0-9A-F]{8}\.history$/;
const BACKUP_ID = /^\d{8}T\d{6}Z$/;
const MAX_WAL_BYTES = 64 * 1024 * 1024;
const MAX_CERTIFICATE_REQUEST_BYTES = 16 * 1024;
const MAX_PAUSE_REQUEST_BYTES = 4 * 1024;

/** A member's server certificate, or why not. */
export type CertificateAnswer = { certificate: string } | { refused: string; status: 400 | 404 };

/** Signs a member's server certificate, or says why not. */
export type CertificateIssuer = (
  member: string,
  publicKeyPem: string,
) => CertificateAnswer | Promise<CertificateAnswer>;

export interface BackupInfo {
  id: string;
  startedAt: string;
  finishedAt: string;
  member: string;
  bytes: number;
  verified: boolean;
}

/** The archived WAL segments: the first and last by name, and when the last one was archived. */
export interface WalRange {
  segments: number;
  first: string;
  last: string;
  /** When the last segment reached the archive (its file's mtime): a restore cannot go past it. */
  lastArchivedAt: string;
}

/** How many of the newest base backups the router publishes (the backup API lists them all). */
export const RECENT_BACKUPS = 50;

/** The archive's segments (history files and .backup labels aside), oldest to newest; null when none. */
export function walRange(walDir: string, names: readonly string[]): WalRange | null {
  // Segment names (timeline, log, seg in hex, fixed width) sort in WAL order within a timeline; across
  // timelines a higher timeline comes later, as it does in time.
  const segments = names.filter((n) => /^[0-9A-F]{24}$/.test(n)).sort();
  const first = segments[0];
  const last = segments.at(-1);
  if (first === undefined || last === undefined) return null;
  let lastArchivedAt: string;
  try {
    lastArchivedAt = statSync(join(walDir, last)).mtime.toISOString();
  } catch {
    return null;
  }
  return { segments: segments.length, first, last, lastArchivedAt };
}

export class BackupStore {
  private server: Server | undefined;
  private running = false;
  isRunning(): boolean {
    return this.running;
  }
  private lastError: string | null = null;
  private readonly dir: string;

  constructor(
    private readonly options: {
      partitionPath: string;
      binDir: string;
      peerToken: () => string;
      backupToken: () => string;
      superuserPassword: () => string;
      /** libpq environment for pg_basebackup (sslmode, the cluster CA). */
      tlsEnv: () => Record<string, string>;
      issueCertificate: CertificateIssuer;
      /** Pauses the read-write endpoint before a switchover (answers once paused, or after its bound). */
      pause: (body: PauseRequestBody) => Promise<PauseAnswer>;
      log: (line: string) => void;
    },
  ) {
    this.dir = join(options.partitionPath, 'backups');
  }

  /**
   * Serves the API on `host:port`: HTTPS with the router's certificate when `tls` is given (a client
   * certificate is asked for, and one that does not chain to the cluster CA is refused, but none is
   * required: see cluster-tls.ts); plain HTTP otherwise (a cluster rendered before TLS).
   */
  async start(host: string, port: number, tls: { ca: string; identity: TlsIdentity } | null): Promise<void> {
    await mkdir(join(this.dir, 'wal'), { recursive: true, mode: 0o700 });
    await mkdir(join(this.dir, 'base'), { recursive: true, mode: 0o700 });
    const handler = (req: IncomingMessage, res: ServerResponse): void => {
      this.serve(req, res).catch((error: unknown) => {
        if (!res.headersSent) res.writeHead(500).end((error as Error).message);
        else res.destroy();
      });
    };
    this.server = tls === null ? createServer(handler) : createTlsServer(tls, 'optional', handler);
    await new Promise<void>((resolve, reject) => {
      this.server?.once('error', reject);
      this.server?.listen(port, host, () => resolve());
    });
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  /** The router's renewed certificate, for new connections. */
  renewTls(tls: { ca: string; identity: TlsIdentity }): void {
    if (this.server !== undefined && this.server.listening) renewTlsServer(this.server, tls);
  }

  list(): BackupInfo[] {
    const base = join(this.dir, 'base');
    if (!existsSync(base)) return [];
    return readdirSync(base)
      .filter((d) => BACKUP_ID.test(d))
      .flatMap((d) => {
        try {
          return [JSON.parse(readFileSync(join(base, d, 'hyper_db-backup.json'), 'utf8')) as BackupInfo];
        } catch {
          return [];
        }
      })
      .sort((a, b) => a.id.localeCompare(b.id));
  }

  status(): {
    count: number;
    last: BackupInfo | null;
    ageS: number | null;
    error: string | null;
    walFiles: number;
    wal: WalRange | null;
    recent: BackupInfo[];
  } {
    const all = this.list();
    const last = all.at(-1) ?? null;
    const walDir = join(this.dir, 'wal');
    const names = existsSync(walDir) ? readdirSync(walDir).filter((f) => WAL_NAME.test(f)) : [];
    return {
      count: all.length,
      last,
      ageS: last ? Math.round((Date.now() - Date.parse(last.finishedAt)) / 1000) : null,
      error: this.lastError,
      walFiles: names.length,
      wal: walRange(walDir, names),
      recent: all.slice(-RECENT_BACKUPS),
    };
  }

  /** Takes a base backup from `primary` unless one is running; resolves with its id when it is listed. */
  async takeBaseBackup(primary: MemberAddress): Promise<string | null> {
    if (this.running) return null;
    this.running = true;
    const id = new Date()
      .toISOString()
      .replace(/[-:]/g, '')
      .replace(/\.\d+Z$/, 'Z');
    const tmp = join(this.dir, 'base', `${id}.tmp`);
    const startedAt = new Date().toISOString();
    try {
      await rm(tmp, { recursive: true, force: true });
      await exec(
        join(this.options.binDir, 'pg_basebackup'),
        [
          '-h',
          primary.host,
          '-p',
          String(primary.pgPort),
          '-U',
          SUPERUSER,
          '-D',
          tmp,
          '-Fp',
          '-X',
          'fetch',
          '-c',
          'fast',
        ],
        {
          timeout: 3_600_000,
          env: {
            ...process.env,
            ...this.options.tlsEnv(),
            PGPASSWORD: this.options.superuserPassword(),
            PGCONNECT_TIMEOUT: '5',
          },
        },
      );
      await exec(join(this.options.binDir, 'pg_verifybackup'), [tmp], { timeout: 3_600_000 });
      const bytes = Number((await exec('du', ['-sb', tmp])).stdout.split('\t')[0]);
      const info: BackupInfo = {
        id,
        startedAt,
        finishedAt: new Date().toISOString(),
        member: primary.name,
        bytes,
        verified: true,
      };
      await writeFile(join(tmp, 'hyper_db-backup.json'), JSON.stringify(info));
      await rename(tmp, join(this.dir, 'base', id));
      this.lastError = null;
      this.options.log(`base backup ${id} from ${primary.name}: ${bytes} bytes, verified`);
      return id;
    } catch (error) {
      this.lastError = `base backup failed: ${(error as Error).message.split('\n')[0] ?? ''}`;
      this.options.log(this.lastError);
      await rm(tmp, { recursive: true, force: true });
      return null;
    } finally {
      this.running = false;
    }
  }

  /** The JSON body of a small request (any JSON value, `null` included), or null when an answer (413, 400) was already sent. */
  private async readJson(
    req: IncomingMessage,
    res: ServerResponse,
    maxBytes: number,
  ): Promise<{ body: unknown } | null> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > maxBytes) {
        res.writeHead(413).end('body too large');
        return null;
      }
      chunks.push(chunk);
    }
    try {
      return { body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown };
    } catch {
      res.writeHead(400).end('body is not JSON');
      return null;
    }
  }

  private async servePause(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const read = await this.readJson(req, res, MAX_PAUSE_REQUEST_BYTES);
    if (read === null) return;
    const body = (read.body ?? {}) as Partial<PauseRequestBody>;
    if (typeof body.switchoverId !== 'string' || typeof body.from !== 'string') {
      res.writeHead(400).end('expected {switchoverId, from}');
      return;
    }
    const answer = await this.options.pause({
      switchoverId: body.switchoverId.slice(0, 64),
      from: body.from.slice(0, 64),
    });
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
  }

  private async serveCertificate(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const read = await this.readJson(req, res, MAX_CERTIFICATE_REQUEST_BYTES);
    if (read === null) return;
    const body = (read.body ?? {}) as { member?: unknown; publicKey?: unknown };
    if (typeof body.member !== 'string' || typeof body.publicKey !== 'string') {
      res.writeHead(400).end('expected {member, publicKey}');
      return;
    }
    let answer: CertificateAnswer;
    try {
      answer = await this.options.issueCertificate(body.member, body.publicKey);
    } catch (error) {
      answer = { refused: `cannot sign: ${(error as Error).message}`, status: 400 };
    }
    if ('refused' in answer) res.writeHead(answer.status).end(answer.refused);
    else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
  }

  private authorized(req: IncomingMessage, write: boolean): boolean {
    const given = Buffer.from(req.headers.authorization ?? '');
    const tokens = write ? [this.options.peerToken()] : [this.options.peerToken(), this.options.backupToken()];
    return tokens.some((t) => {
      const expected = Buffer.from(`Bearer ${t}`);
      return given.length === expected.length && timingSafeEqual(given, expected);
    });
  }

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = (req.url ?? '').split('?')[0] ?? '';
    const write = req.method !== 'GET';
    const refused = clientCertificateProblem(req);
    if (refused !== null) {
      res.writeHead(403).end(refused);
      return;
    }
    if (!this.authorized(req, write)) {
      res.writeHead(401).end('missing or wrong token');
      return;
    }
    const wal = /^\/wal\/([^/]+)$/.exec(url);
    if (wal?.[1] !== undefined && WAL_NAME.test(wal[1])) {
      const path = join(this.dir, 'wal', wal[1]);
      if (req.method === 'GET') {
        if (!existsSync(path)) {
          res.writeHead(404).end();
          return;
        }
        res.writeHead(200, { 'content-length': statSync(path).size });
        await pipeline(createReadStream(path), res);
        return;
      }
      if (req.method === 'PUT') {
        // Archived files never change: the same name twice is accepted only for identical content. Each
        // upload has its own temporary file, and link() publishes it only if the name is free (atomically:
        // of two uploads at once, one is stored whole, the other compared with it).
        const tmp = `${path}.${randomUUID()}.tmp`;
        try {
          let size = 0;
          await pipeline(
            req,
            async function* (source: AsyncIterable<Buffer>) {
              for await (const chunk of source) {
                size += chunk.length;
                if (size > MAX_WAL_BYTES) throw new Error('WAL file too large');
                yield chunk;
              }
            },
            createWriteStream(tmp, { mode: 0o600, flags: 'wx' }),
          );
          await syncPath(tmp);
          try {
            await link(tmp, path);
          } catch (error) {
            if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
            const same = (await readFile(path)).equals(await readFile(tmp));
            res.writeHead(same ? 200 : 409).end(same ? 'already archived' : 'a different file has that name');
            return;
          }
          await syncPath(join(this.dir, 'wal'));
          res.writeHead(201).end();
          return;
        } finally {
          await rm(tmp, { force: true });
        }
      }
    }
    if (req.method === 'POST' && url === '/tls/certificate') {
      await this.serveCertificate(req, res);
      return;
    }
    if (req.method === 'POST' && url === '/pause') {
      await this.servePause(req, res);
      return;
    }
    if (req.method === 'GET' && url === '/backups') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(this.list()));
      return;
    }
    const tarMatch = /^\/backups\/([^/]+)\.tar$/.exec(url);
    if (req.method === 'GET' && tarMatch?.[1] !== undefined && BACKUP_ID.test(tarMatch[1])) {
      const path = join(this.dir, 'base', tarMatch[1]);
      if (!existsSync(join(path, 'hyper_db-backup.json'))) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/x-tar' });
      const tar = spawn('tar', ['-C', path, '-cf', '-', '--exclude=hyper_db-backup.json', '.'], {
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      await pipeline(tar.stdout, res);
      return;
    }
    res.writeHead(404).end();
  }
}

/** fsync of a file or directory: archive_command may succeed only once the file is durably stored. */
async function syncPath(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
