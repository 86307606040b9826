// @ts-check
/**
 * Run inside a machine of the lab (`ip netns exec NS node probe-ports.mjs <targets.json>`): for each
 * target `{host, port, cas: {name: PEM}}`, how the port answers, as one JSON line on stdout:
 *
 *   { host, port, tls: <name of the CA its certificate verified against, for host> | null,
 *     postgresTls: <the same after PostgreSQL's SSLRequest> | null,
 *     plainHttp: <the first bytes answered to a plain-text HTTP request, or ''>,
 *     plainPostgres: <'E'/'R'/… the first message type answered to a plain-text startup, or ''>,
 *     errors: {...} }
 *
 * A port "speaks TLS" when `tls` or `postgresTls` names a CA; it "refuses plain text" when a plain HTTP
 * request gets no HTTP answer and a plain PostgreSQL startup gets no authentication request ('R').
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';

const TIMEOUT_MS = 4000;

/** @typedef {{ host: string, port: number, cas: Record<string, string> }} Target */

/** @param {net.Socket} socket @param {number} want @returns {Promise<Buffer>} */
function readSome(socket, want) {
  return new Promise((resolve) => {
    /** @type {Buffer[]} */
    const chunks = [];
    let size = 0;
    const done = () => {
      clearTimeout(timer);
      socket.removeAllListeners('data');
      resolve(Buffer.concat(chunks));
    };
    const timer = setTimeout(done, TIMEOUT_MS);
    socket.on('data', (chunk) => {
      chunks.push(chunk);
      size += chunk.length;
      if (size >= want) done();
    });
    socket.once('close', done);
    socket.once('error', done);
  });
}

/** @param {string} host @param {number} port @returns {Promise<net.Socket>} */
function connect(host, port) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    socket.setTimeout(TIMEOUT_MS, () => socket.destroy(new Error('timed out')));
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

/**
 * A TLS handshake on `socket` (or a new connection), the server verified against `ca` for `host`.
 * @param {string} host @param {number} port @param {string} ca @param {net.Socket} [socket]
 * @returns {Promise<true>}
 */
function handshake(host, port, ca, socket) {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host, port, ca, ...(socket ? { socket } : {}), servername: undefined });
    s.setTimeout(TIMEOUT_MS, () => s.destroy(new Error('timed out')));
    s.once('secureConnect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', reject);
  });
}

/** PostgreSQL's SSLRequest: 8 bytes, length then the code 80877103. */
const SSL_REQUEST = Buffer.from([0, 0, 0, 8, 4, 210, 22, 47]);

/** A protocol 3.0 startup for user `probe`, database `postgres`, in plain text. */
function startupMessage() {
  const params = Buffer.from('user\0probe\0database\0postgres\0\0');
  const out = Buffer.alloc(8 + params.length);
  out.writeInt32BE(out.length, 0);
  out.writeInt32BE(196608, 4);
  params.copy(out, 8);
  return out;
}

/** @param {Target} t */
async function probe(t) {
  /** @type {Record<string, string>} */
  const errors = {};
  /** @type {string | null} */
  let tlsCa = null;
  /** @type {string | null} */
  let postgresTls = null;
  for (const [name, ca] of Object.entries(t.cas)) {
    try {
      await handshake(t.host, t.port, ca);
      tlsCa = name;
      break;
    } catch (error) {
      errors[`tls ${name}`] = error instanceof Error ? error.message : String(error);
    }
  }
  if (tlsCa === null)
    for (const [name, ca] of Object.entries(t.cas)) {
      try {
        const socket = await connect(t.host, t.port);
        socket.write(SSL_REQUEST);
        const answer = await readSome(socket, 1);
        if (answer.toString('latin1', 0, 1) !== 'S') {
          socket.destroy();
          errors[`postgres ${name}`] = `SSLRequest answered '${answer.toString('latin1', 0, 1)}'`;
          break;
        }
        await handshake(t.host, t.port, ca, socket);
        postgresTls = name;
        break;
      } catch (error) {
        errors[`postgres ${name}`] = error instanceof Error ? error.message : String(error);
      }
    }
  let plainHttp = '';
  try {
    const socket = await connect(t.host, t.port);
    socket.write(`GET / HTTP/1.1\r\nHost: ${t.host}\r\nConnection: close\r\n\r\n`);
    plainHttp = (await readSome(socket, 5)).toString('latin1', 0, 5);
    socket.destroy();
  } catch (error) {
    errors['plain http'] = error instanceof Error ? error.message : String(error);
  }
  let plainPostgres = '';
  try {
    const socket = await connect(t.host, t.port);
    socket.write(startupMessage());
    plainPostgres = (await readSome(socket, 1)).toString('latin1', 0, 1);
    socket.destroy();
  } catch (error) {
    errors['plain postgres'] = error instanceof Error ? error.message : String(error);
  }
  return { host: t.host, port: t.port, tls: tlsCa, postgresTls, plainHttp, plainPostgres, errors };
}

const targets = /** @type {Target[]} */ (JSON.parse(readFileSync(String(process.argv[2]), 'utf8')));
for (const t of targets) process.stdout.write(`${JSON.stringify(await probe(t))}\n`);
