/**
 * The typed client of the master API, used by the CLI, the node agent, the
 * dashboard and the tests. Errors come back as the same {@link HoxError} the
 * master threw (code, message, field); a master that cannot be reached is
 * `HOX_MASTER_UNREACHABLE`.
 *
 * @example
 * const client = new MasterClient({ url: 'https://127.0.0.1:8470', token, ca: readFileSync('/var/lib/hox/ca.pem', 'utf8') });
 * const doc = await client.call('requestInstance', { title: 'db', software_release_uri: 'hyper_db', software_type: 'default' });
 */
import { ROUTES, type RouteName } from '../protocol/routes.js';
import { HoxError } from '../shared/errors.js';
import { exchange, type HttpAnswer } from './http-transport.js';
import { isOk, toClientError, type RequestOf, type ResponseOf } from './route-call.js';

export { isNotReady, type RequestOf, type ResponseOf } from './route-call.js';

export interface MasterClientOptions {
  /** Base URL of the master, e.g. `https://127.0.0.1:8470`. */
  url: string;
  /** Bearer token (admin, user, node, instance or registration). */
  token?: string;
  /** Per-call timeout; long-polls add their own wait to it. @default 30000 */
  timeoutMs?: number;
  /** PEM roots the master's certificate must chain to (the platform CA's); the system's CAs when absent. */
  ca?: string;
  /** A node's or an instance's own certificate chain and key (PEM): presented to the master (mutual TLS). */
  clientCertificate?: { cert: string; key: string };
}

export class MasterClient {
  readonly url: string;
  private readonly token: string | undefined;
  private readonly timeoutMs: number;
  readonly ca: string | undefined;
  private clientCertificate: { cert: string; key: string } | undefined;

  constructor(options: MasterClientOptions) {
    this.url = options.url.replace(/\/+$/, '');
    refusePlainHttp(this.url, options.ca !== undefined);
    this.token = options.token;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.ca = options.ca;
    this.clientCertificate = options.clientCertificate;
  }

  /** The same master and token, presenting no client certificate (to ask for a new one when it was refused). */
  withoutClientCertificate(): MasterClient {
    return new MasterClient({
      url: this.url,
      timeoutMs: this.timeoutMs,
      ...(this.token === undefined ? {} : { token: this.token }),
      ...(this.ca === undefined ? {} : { ca: this.ca }),
    });
  }

  /** Presents this certificate from now on (a renewed one replaces the last). */
  useClientCertificate(certificate: { cert: string; key: string }): void {
    this.clientCertificate = certificate;
  }

  /** What every exchange of this client adds: the CA it trusts and the certificate it presents. */
  private tls(): { ca?: string; clientCertificate?: { cert: string; key: string } } {
    return {
      ...(this.ca === undefined ? {} : { ca: this.ca }),
      ...(this.clientCertificate === undefined ? {} : { clientCertificate: this.clientCertificate }),
    };
  }

  /** A client for the same master with another token. */
  withToken(token: string): MasterClient {
    return new MasterClient({
      url: this.url,
      token,
      timeoutMs: this.timeoutMs,
      ...(this.ca === undefined ? {} : { ca: this.ca }),
    });
  }

  async call<R extends RouteName>(
    route: R,
    body: RequestOf<R>,
    options: { signal?: AbortSignal } = {},
  ): Promise<ResponseOf<R>> {
    const path = ROUTES[route].path;
    const extraWait =
      route === 'waitForChange' || route === 'listLogRequests'
        ? ((body as { timeout_ms?: number }).timeout_ms ?? 25_000)
        : route === 'readTreeLogs'
          ? ((body as { wait_ms?: number }).wait_ms ?? 10_000)
          : 0;
    const timeout = AbortSignal.timeout(this.timeoutMs + extraWait);
    const signal = options.signal === undefined ? timeout : AbortSignal.any([timeout, options.signal]);
    let response: HttpAnswer;
    try {
      response = await exchange({
        method: 'POST',
        url: `${this.url}${path}`,
        headers: {
          'content-type': 'application/json',
          ...(this.token === undefined ? {} : { authorization: `Bearer ${this.token}` }),
        },
        body: JSON.stringify(body),
        signal,
        ...this.tls(),
      });
    } catch (error) {
      throw unreachable(this.url, path, error);
    }
    let payload: unknown;
    try {
      payload = JSON.parse(response.body.toString('utf8'));
    } catch (error) {
      throw new HoxError('HOX_INTERNAL', `master answered ${response.status} with a body that is not JSON`, {
        cause: error,
      });
    }
    if (!isOk(response.status)) throw toClientError(response.status, payload);
    return payload as ResponseOf<R>;
  }

  /** Uploads an artifact (raw bytes) under the SHA-256 of its content; a second upload is a no-op. */
  async putArtifact(sha256: string, content: Uint8Array): Promise<{ sha256: string; size_bytes: number }> {
    const response = await this.raw('PUT', `/hox/v1/artifacts/${sha256}`, content);
    try {
      return JSON.parse(response.body.toString('utf8')) as { sha256: string; size_bytes: number };
    } catch (error) {
      throw new HoxError('HOX_INTERNAL', `master answered ${response.status} with a body that is not JSON`, {
        cause: error,
      });
    }
  }

  /** Whether the master already holds this artifact (and the caller may read it). */
  async hasArtifact(sha256: string): Promise<boolean> {
    try {
      await this.raw('HEAD', `/hox/v1/artifacts/${sha256}`);
      return true;
    } catch (error) {
      if (error instanceof HoxError && error.code === 'HOX_NOT_FOUND') return false;
      throw error;
    }
  }

  /** Downloads an artifact's bytes. */
  async getArtifact(sha256: string): Promise<Buffer> {
    return (await this.raw('GET', `/hox/v1/artifacts/${sha256}`)).body;
  }

  private async raw(method: 'GET' | 'HEAD' | 'PUT', path: string, body?: Uint8Array): Promise<HttpAnswer> {
    let response: HttpAnswer;
    try {
      response = await exchange({
        method,
        url: `${this.url}${path}`,
        headers: {
          ...(body === undefined ? {} : { 'content-type': 'application/octet-stream' }),
          ...(this.token === undefined ? {} : { authorization: `Bearer ${this.token}` }),
        },
        ...(body === undefined ? {} : { body }),
        // Large uploads and downloads get more time than a JSON call.
        signal: AbortSignal.timeout(this.timeoutMs * 10),
        ...this.tls(),
      });
    } catch (error) {
      throw unreachable(this.url, `${method} ${path}`, error);
    }
    if (isOk(response.status)) return response;
    if (method === 'HEAD')
      throw toClientError(response.status, { type: response.status === 404 ? 'HOX_NOT_FOUND' : undefined });
    let payload: unknown = {};
    try {
      payload = JSON.parse(response.body.toString('utf8'));
    } catch {
      // keep the status-only error below
    }
    throw toClientError(response.status, payload);
  }

  async health(): Promise<boolean> {
    try {
      const response = await exchange({
        method: 'GET',
        url: `${this.url}/health`,
        headers: {},
        signal: AbortSignal.timeout(this.timeoutMs),
        ...this.tls(),
      });
      return isOk(response.status);
    } catch {
      return false;
    }
  }
}

/**
 * Masters speak HTTPS: a token must not leave for a plain-HTTP URL, except to this machine's loopback (a master
 * made inside a test process, which has no other client). With a CA given, `http:` is a mistake anywhere.
 */
function refusePlainHttp(url: string, withCa: boolean): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new HoxError('HOX_BAD_REQUEST', `'${url}' is not a URL`, { field: '--master' });
  }
  if (parsed.protocol !== 'http:') return;
  const host = parsed.hostname.replace(/^\[|\]$/g, '');
  const loopback = host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
  if (withCa || !loopback)
    throw new HoxError('HOX_BAD_REQUEST', `masters speak HTTPS: use https://${parsed.host} (not ${url})`, {
      field: '--master',
    });
}

/** Certificate errors of Node's TLS client: the master answered, but is not the one this client trusts. */
const UNTRUSTED = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  // http-transport.ts: a platform certificate that is not a master's (a hyper_db member's, say).
  'CERT_NOT_A_MASTER',
]);

/** The error of an exchange that got no answer: unreachable, untrusted, or plain HTTP sent to an HTTPS master. */
function unreachable(url: string, what: string, error: unknown): HoxError {
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && UNTRUSTED.has(code)) {
    const hint =
      code === 'ERR_TLS_CERT_ALTNAME_INVALID'
        ? "the URL's host is not among the certificate's names: use a name it has, or start the master with --tls-name HOST"
        : code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID'
          ? "check this machine's clock and the master's (it renews its certificate itself)"
          : 'trust it by its CA pin: hox login --url URL --ca-pin sha256:… (hox node: --ca-pin), the pin hox master and hox up print';
    return new HoxError(
      'HOX_MASTER_UNTRUSTED',
      `master at ${url} presented a certificate this client does not trust (${code}): ${hint}`,
      { cause: error },
    );
  }
  const plainToTls = url.startsWith('http:') && (code === 'ECONNRESET' || code === 'ERR_INVALID_HTTP_RESPONSE');
  return new HoxError(
    'HOX_MASTER_UNREACHABLE',
    `master at ${url} is unreachable (${what})${plainToTls ? ': masters speak HTTPS, use an https:// URL' : ''}`,
    { cause: error },
  );
}
