/**
 * The heavy modules only some commands need — the master (fastify, kysely,
 * better-sqlite3, pg, ajv, pino), the node agent, the pilot — imported when
 * the action that needs them runs, never when the program is built: `hox
 * --version`, `--help`, `list`, `show`… then start in about the time of a bare
 * Node start (bench/cli-startup, docs/benchmarks.md). Command files import
 * only commander, the client and the light helpers of src/cli at top level;
 * test/cli-startup.test.ts keeps it so.
 */

/** What `hox master` and `hox up` need to run a master. */
export async function loadMasterRuntime() {
  const [{ createMaster }, { resolveMasterConfig }] = await Promise.all([
    import('../master/create-master.js'),
    import('../master/master-config.js'),
  ]);
  return { createMaster, resolveMasterConfig };
}

/** What `hox node` and `hox up` need to run a node agent. */
export async function loadNodeRuntime() {
  const [{ createNodeAgent }, { resolveNodeAgentConfig }] = await Promise.all([
    import('../agent/node-agent.js'),
    import('../agent/agent-config.js'),
  ]);
  return { createNodeAgent, resolveNodeAgentConfig };
}

/** `hox up --with-pilot`. */
export async function loadPilot() {
  const { startPilot } = await import('./app/pilot.js');
  return { startPilot };
}

type AsyncFunction = (...args: never[]) => Promise<unknown>;

/**
 * Stand-ins for async functions of a module that is imported on the first
 * call, with the functions' own types: a command file swaps its import line
 * for this and keeps its actions as they are. Only async functions qualify
 * (the type says so): a sync one would turn into a promise nobody awaits.
 *
 * @example
 * const { showApp } = lazyFunctions(() => import('../app/app-actions.js'), ['showApp']);
 */
export function lazyFunctions<M extends Record<K, AsyncFunction>, K extends keyof M & string>(
  load: () => Promise<M>,
  names: readonly K[],
): Pick<M, K> {
  const stand: Partial<Pick<M, K>> = {};
  for (const name of names) {
    const call = async (...args: never[]): Promise<unknown> => (await load())[name](...args);
    stand[name] = call as M[K];
  }
  return stand as Pick<M, K>;
}
