/**
 * `hox cdn`: hyper_cdn — a CDN (edges: Caddy with HTTP/3 in front of Varnish) and its sites (shared instances),
 * purges that return once every edge confirmed them, and each site's traffic.
 */
import { Command, Option } from 'commander';
import type { CommandEnv } from '../command-env.js';
import { confirmDestruction } from '../confirm-destruction.js';
import { actionContext, positiveInteger, routeOutput, timeoutOption } from '../action-context.js';
import { lazyFunctions } from '../lazy-modules.js';

const { addSite, createCdn, listSites, printCa, purgeSite, removeSite, siteStatus } = lazyFunctions(
  () => import('../cdn/cdn-actions.js'),
  ['addSite', 'createCdn', 'listSites', 'printCa', 'purgeSite', 'removeSite', 'siteStatus'],
);

/** A repeatable option collecting its values. */
const many = (flags: string, what: string) =>
  new Option(flags, what).argParser((item: string, previous: string[] | undefined) => [...(previous ?? []), item]);

function createSubcommand(env: CommandEnv): Command {
  return new Command('create')
    .description('Create a CDN: edges (Caddy: HTTP/1.1, 2, 3 over TLS; Varnish: the cache), spread over nodes')
    .argument('[name]', 'the CDN (instance tree title)', 'cdn')
    .addOption(
      new Option('--edges <n>', 'edges (default 3; on as many nodes when there is room)').argParser(positiveInteger),
    )
    .addOption(
      new Option('--cache-mib <n>', "each edge's cache in MiB of memory (default 256)").argParser(positiveInteger),
    )
    .option(
      '--acme-directory <url>',
      "take the sites' certificates from this ACME CA (default: the platform's sites CA)",
    )
    .option('--acme-email <email>', "the ACME account's contact")
    .option('--acme-ca-file <pem>', "roots to trust for the ACME server's own HTTPS (a test CA such as pebble's)")
    .addOption(new Option('--no-wait', 'return once requested'))
    .addOption(timeoutOption(600))
    .addHelpText(
      'after',
      `
Sites of every user are hosted on the admin's CDN (or on their own): hox cdn site add.
Run again to change it (give every option you want kept).

With --acme-directory, the edges answer the CA's http-01 challenges on their plain HTTP port (what the
names must point to, on port 80); the certificates are then trusted by every browser (Let's Encrypt).

Examples:
  hox cdn create                      # 'cdn', 3 edges
  hox cdn create --edges 2 --cache-mib 1024
  hox cdn create --acme-directory https://acme-v02.api.letsencrypt.org/directory --acme-email ops@example.org`,
    )
    .action(
      async (
        name: string,
        opts: {
          edges?: number;
          cacheMib?: number;
          acmeDirectory?: string;
          acmeEmail?: string;
          acmeCaFile?: string;
          wait: boolean;
          timeout: number;
        },
        command: Command,
      ) => {
        await createCdn(actionContext(env, command), name, {
          ...(opts.edges === undefined ? {} : { edges: opts.edges }),
          ...(opts.cacheMib === undefined ? {} : { cacheMiB: opts.cacheMib }),
          ...(opts.acmeDirectory === undefined
            ? {}
            : {
                acme: {
                  directory: opts.acmeDirectory,
                  ...(opts.acmeEmail === undefined ? {} : { email: opts.acmeEmail }),
                  ...(opts.acmeCaFile === undefined ? {} : { caFile: opts.acmeCaFile }),
                },
              }),
          wait: opts.wait,
          timeoutMs: opts.timeout * 1000,
        });
      },
    );
}

function siteCommand(env: CommandEnv): Command {
  const site = new Command('site').description('Sites: what a CDN serves, for which host names, from which origin');
  site.addCommand(
    new Command('add')
      .description('Put an origin (a URL, or one of your apps) behind the CDN; follow it until every edge serves it')
      .argument('<name>', 'the site (your instance tree title)')
      .option('--origin <url>', 'http:// or https:// origin the edges fetch from')
      .option('--app <app>', 'one of your hyper_edge apps as the origin (its public endpoint)')
      .addOption(many('--domain <name>', 'a host name the site answers (repeatable, at most 10)'))
      .option('--cdn <name>', "the CDN to host it (default: yours, else the admin's)")
      .addOption(new Option('--no-wait', 'return once requested'))
      .addOption(timeoutOption(120))
      .addHelpText(
        'after',
        `
The edges answer for --domain over HTTPS with a certificate of the platform's sites CA (hox cdn ca
NAME prints it), or of the CDN's ACME CA when it has one; point the name at the edges (DNS), or
try one with curl --connect-to. Run again to change the
origin or the names.

Examples:
  hox cdn site add video --origin https://origin.example.org --domain video.example.org
  hox cdn site add crm-cdn --app crm --domain crm.example.org`,
      )
      .action(
        async (
          name: string,
          opts: { origin?: string; app?: string; domain?: string[]; cdn?: string; wait: boolean; timeout: number },
          command: Command,
        ) => {
          await addSite(actionContext(env, command), name, {
            ...(opts.origin === undefined ? {} : { origin: opts.origin }),
            ...(opts.app === undefined ? {} : { app: opts.app }),
            domains: opts.domain ?? [],
            ...(opts.cdn === undefined ? {} : { cdn: opts.cdn }),
            wait: opts.wait,
            timeoutMs: opts.timeout * 1000,
          });
        },
      ),
  );
  site.addCommand(
    new Command('list')
      .description('Your sites: state, edges serving them, host names, origin')
      .action(async (_opts: unknown, command: Command) => {
        await listSites(actionContext(env, command));
      }),
  );
  site.addCommand(
    new Command('remove')
      .description('Stop serving a site on every edge')
      .argument('<name>', 'the site')
      .option('--yes', 'do not ask (needed without a terminal)')
      .action(async (name: string, opts: { yes?: boolean }, command: Command) => {
        await removeSite(actionContext(env, command), name, {
          confirm: (consequence) =>
            confirmDestruction(env, {
              what: `CDN site '${name}'`,
              name,
              consequence,
              yes: opts.yes === true,
              command: `hox cdn site remove ${name}`,
            }),
        });
      }),
  );
  return site;
}

function purgeSubcommand(env: CommandEnv): Command {
  return new Command('purge')
    .description("Purge a site's cached objects on every edge; returns once every edge confirmed")
    .argument('<site>', 'the site')
    .addOption(many('--url <path>', 'one object, by path (repeatable)'))
    .addOption(many('--prefix <path>', 'every object whose path starts so (repeatable)'))
    .addOption(many('--tag <tag>', 'every object the origin tagged so in Surrogate-Key (repeatable)'))
    .addHelpText(
      'after',
      `
The next request for a purged object goes to the origin. Exit code 1 when an edge did not confirm
(it says which): run the purge again.

Examples:
  hox cdn purge video --url /live/index.m3u8
  hox cdn purge video --prefix /vod/episode-12/
  hox cdn purge video --tag episode-12`,
    )
    .action(async (name: string, opts: { url?: string[]; prefix?: string[]; tag?: string[] }, command: Command) => {
      await purgeSite(actionContext(env, command), name, {
        urls: opts.url ?? [],
        prefixes: opts.prefix ?? [],
        tags: opts.tag ?? [],
      });
    });
}

export function cdnCommand(env: CommandEnv): Command {
  const cdn = new Command('cdn').description('hyper_cdn: an HTTP/3 CDN — create, sites, purge, status').addHelpText(
    'after',
    `
Examples:
  hox cdn create                                            # the admin, once
  hox cdn site add video --origin https://origin.example.org --domain video.example.org
  hox cdn status video                                      # requests, hit ratio, origin offload, TTFB
  hox cdn purge video --tag episode-12`,
  );
  cdn.addCommand(createSubcommand(env));
  cdn.addCommand(siteCommand(env));
  cdn.addCommand(purgeSubcommand(env));
  cdn.addCommand(
    new Command('status')
      .description("A site's state, edges and traffic: requests, hit ratio, bytes served and from the origin, TTFB")
      .argument('<site>', 'the site')
      .action(async (name: string, _opts: unknown, command: Command) => {
        await siteStatus(actionContext(env, command), name);
      }),
  );
  cdn.addCommand(
    new Command('ca')
      .description("Print the CA (PEM) of the site's certificates, for clients to trust")
      .argument('<site>', 'the site')
      .action(async (name: string, _opts: unknown, command: Command) => {
        await printCa(actionContext(env, command), name);
      }),
  );
  return routeOutput(env, cdn);
}
