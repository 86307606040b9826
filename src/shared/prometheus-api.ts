/** Prometheus's HTTP API (`/api/v1/query_range`), as hyper_monitor's watch program and `hox metrics` read it: HTTPS, basic auth. */
import { request } from 'node:https';
/** A range-query series: its labels and `[seconds since the epoch, "value"]` pairs. */
export interface RangeSeries {
  metric: Record<string, string>;
  values: [number, string][];
}

export interface PrometheusAccess {
  url: string;
  user: string;
  password: string;
  ca: string;
}

const TIMEOUT_MS = 30_000;
const MAX_BODY = 64 * 1024 * 1024;

/** The series of `query` over [startS, endS] every `stepS` seconds. */
export async function queryRange(
  access: PrometheusAccess,
  query: string,
  range: { startS: number; endS: number; stepS: number },
): Promise<RangeSeries[]> {
  const params = new URLSearchParams({
    query,
    start: String(range.startS),
    end: String(range.endS),
    step: String(range.stepS),
  });
  const { status, body } = await prometheusGet(access, `/api/v1/query_range?${params.toString()}`);
  // 400 and 422 carry Prometheus's own error in the body (a bad query, a range too large).
  if (status !== 200 && status !== 400 && status !== 422)
    throw new Error(`Prometheus answered HTTP ${status}: ${body.slice(0, 200)}`);
  const answer = JSON.parse(body) as {
    status?: string;
    error?: string;
    data?: { resultType?: string; result?: RangeSeries[] };
  };
  if (answer.status !== 'success' || answer.data?.resultType !== 'matrix' || !Array.isArray(answer.data.result))
    throw new Error(`Prometheus answered ${answer.status ?? '?'} to ${query}: ${answer.error ?? 'not a matrix'}`);
  return answer.data.result;
}

/** GET `path` on Prometheus's API: HTTPS trusting `access.ca`, basic auth when a user is given. */
export function prometheusGet(
  access: Pick<PrometheusAccess, 'url' | 'ca'> & Partial<Pick<PrometheusAccess, 'user' | 'password'>>,
  path: string,
): Promise<{ status: number; body: string }> {
  const url = new URL(path, access.url);
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        ca: access.ca,
        timeout: TIMEOUT_MS,
        headers:
          access.user === undefined
            ? {}
            : { authorization: `Basic ${Buffer.from(`${access.user}:${access.password ?? ''}`).toString('base64')}` },
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_BODY) req.destroy(new Error(`Prometheus answered more than ${MAX_BODY} bytes`));
          else chunks.push(chunk);
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`Prometheus did not answer within ${TIMEOUT_MS} ms`)));
    req.on('error', reject);
    req.end();
  });
}
