/**
 * An edge's Varnish: its command line, VCL loads, and purges through its purge socket (see vcl.ts). Varnish
 * serves on unix sockets only (one for Caddy, one for purges, both mode 0600: the partition's user alone), keeps
 * its objects in memory (`-s malloc`), and has no jail (it already runs as the partition's user). Its management
 * port (`-T`, on the partition's own address, which only the partition's processes can listen on) answers only
 * who proves it knows the secret in its working directory (`_.secret`, made by varnishd, readable by the
 * partition's user alone): `varnishadm -n <work dir>` finds both.
 */
import { execFile } from 'node:child_process';
import { request } from 'node:http';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface VarnishOptions {
  /** Varnish's working directory (`-n`), inside the partition. */
  workDir: string;
  vclFile: string;
  /** Caddy's connection to the cache. */
  clientSocket: string;
  /** The edge program's connection for purges. */
  purgeSocket: string;
  /** Cache size in MiB. */
  cacheMiB: number;
  /** `ip:port` of the management port (VCL loads). */
  management: string;
}

export function varnishdCommand(options: VarnishOptions): string[] {
  if (!Number.isInteger(options.cacheMiB) || options.cacheMiB < 16) throw new Error('the cache needs at least 16 MiB');
  return [
    'varnishd',
    '-F',
    '-n',
    options.workDir,
    '-a',
    `public=${options.clientSocket},mode=600`,
    '-a',
    `purge=${options.purgeSocket},mode=600`,
    '-f',
    options.vclFile,
    '-s',
    `malloc,${options.cacheMiB}m`,
    '-T',
    options.management,
    '-j',
    'none',
    // Range requests on a miss fetch the whole object (kept for the next ones) and stream the asked bytes.
    '-p',
    'http_range_support=on',
    // A site change is a VCL load, and a load's time is mostly gcc's: unoptimised, 0.13 s instead of 0.37 s here
    // (the VCL's C is glue calling into Varnish, which optimisation barely speeds up).
    '-p',
    'cc_command=exec gcc -O0 -pthread -fpic -shared -Wl,-x -o %o %s',
  ];
}

/** One management command (`varnishadm`); its output, or an error with Varnish's message. */
async function manage(workDir: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await run('varnishadm', ['-n', workDir, '-t', '10', ...args], { timeout: 60_000 });
    return stdout;
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; message: string };
    throw new Error(`varnishadm ${args[0]}: ${(e.stdout ?? '').trim() || (e.stderr ?? '').trim() || e.message}`);
  }
}

/**
 * Makes this VCL the running one: compiled beside the current one (a VCL that does not compile changes nothing),
 * then switched to (requests in flight finish on the old one), then the old ones discarded (their compiled code
 * freed once no request uses them).
 */
export async function useVcl(workDir: string, vclFile: string): Promise<void> {
  // A name never used on this boot (Varnish forgets its VCLs when it restarts).
  const name = `hox_${process.hrtime.bigint()}`;
  await manage(workDir, ['vcl.load', name, vclFile]);
  await manage(workDir, ['vcl.use', name]);
  // `vcl.list -j`: [version, command, time, {name, status, …}…]
  const listed = JSON.parse(await manage(workDir, ['vcl.list', '-j'])) as unknown[];
  for (const entry of listed)
    if (typeof entry === 'object' && entry !== null && 'name' in entry && 'status' in entry) {
      const { name: other, status } = entry as { name: string; status: string };
      if (other !== name && status !== 'active') await manage(workDir, ['vcl.discard', other]).catch(() => undefined);
    }
}

function send(socketPath: string, method: string, path: string, headers: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(
      { socketPath, method, path, headers: { host: 'purge', ...headers }, timeout: 10_000 },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => {
          if (res.statusCode === 200) resolve(res.statusMessage ?? '');
          else reject(new Error(`varnish ${method} answered ${res.statusCode}: ${res.statusMessage ?? text}`));
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`varnish ${method} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/**
 * A prefix as a ban expression's regular expression. `std.ban` takes the expression as is (no CLI quoting: quotes
 * would be part of the value), so arguments are single words: paths have no spaces (checkPurge).
 */
function banRegex(prefix: string): string {
  return `^${prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`;
}

const SITE_ID = /^[a-z0-9][a-z0-9-]{0,62}$/;
const PATH = /^\/[\x21-\x7e]*$/;

export type Purge =
  { kind: 'url'; path: string } | { kind: 'prefix'; prefix: string } | { kind: 'tag'; tags: string[] };

/** Checks a purge before it reaches Varnish: a path, a prefix or tags, nothing that could change its meaning. */
export function checkPurge(purge: Purge): void {
  if (purge.kind === 'url' && !PATH.test(purge.path)) throw new Error(`'${purge.path}' is not a path (/…)`);
  if (purge.kind === 'prefix' && !PATH.test(purge.prefix)) throw new Error(`'${purge.prefix}' is not a path prefix`);
  if (purge.kind === 'tag') {
    if (purge.tags.length === 0 || purge.tags.length > 256) throw new Error('give 1 to 256 tags');
    for (const tag of purge.tags)
      if (!/^[\x21-\x7e]{1,256}$/.test(tag)) throw new Error(`tag '${tag}' has spaces or characters not allowed`);
  }
}

/** Purges one site's objects on this edge: once it returns, the next request for them goes to the origin. */
export async function purge(purgeSocket: string, siteId: string, what: Purge): Promise<void> {
  if (!SITE_ID.test(siteId)) throw new Error(`'${siteId}' is not a site id`);
  checkPurge(what);
  switch (what.kind) {
    case 'url':
      await send(purgeSocket, 'PURGE', what.path, { 'x-hox-site': siteId });
      return;
    case 'prefix':
      await send(purgeSocket, 'BAN', '/', {
        'x-hox-ban': `obj.http.x-hox-site == ${siteId} && obj.http.x-hox-url ~ ${banRegex(what.prefix)}`,
      });
      return;
    case 'tag':
      // xkey keys are global: a site's tags are prefixed by its id when stored (vcl.ts), so one site's purge
      // never touches another's objects.
      await send(purgeSocket, 'XKEY', '/', { 'x-hox-tags': what.tags.map((t) => `${siteId}:${t}`).join(' ') });
      return;
  }
}
