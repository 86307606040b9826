/**
 * The files of a plan's `masterAccess` (release-kit/types.ts): what a partition's programs need to call the master
 * as their instance, and to have Prometheus scrape it (file service discovery).
 */
import type { FileSpec } from '../release-kit/types.js';
import { HoxError } from '../shared/errors.js';

export const MASTER_ACCESS_DIR = 'master';

export function masterAccessFiles(options: {
  masterUrl: string;
  masterCa: string | undefined;
  instanceGuid: string;
  token: string;
}): FileSpec[] {
  const url = new URL(options.masterUrl);
  if (url.protocol !== 'https:' || options.masterCa === undefined)
    throw new HoxError(
      'HOX_BAD_REQUEST',
      `masterAccess needs the master on HTTPS with its roots known to the node (the master is ${url.origin})`,
      { field: 'masterAccess' },
    );
  const target = url.port === '' ? `${url.hostname}:443` : url.host;
  const file = (name: string, content: string, mode = 0o640): FileSpec => ({
    path: `${MASTER_ACCESS_DIR}/${name}`,
    content,
    mode,
    reload: true,
  });
  return [
    file('url', `${url.origin}\n`),
    file('ca.pem', options.masterCa),
    file('instance', `${options.instanceGuid}\n`),
    file('token', options.token, 0o600),
    file('targets.json', `${JSON.stringify([{ targets: [target], labels: { job: 'hox' } }])}\n`),
  ];
}
