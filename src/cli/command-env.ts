/** What commands get from the composition root (src/bin): the only window on env, stdout and signals. */
export interface CommandEnv {
  /** HOX_ADMIN_TOKEN */
  adminToken: string | undefined;
  /** HOX_MASTER_URL */
  masterUrl: string | undefined;
  /** HOX_TOKEN */
  token: string | undefined;
  /** HOX_CA_FILE: a PEM file of the roots the master's certificate must chain to. */
  caFile?: string | undefined;
  /** HOX_REGISTER_TOKEN (`hox node`): secrets come from the environment or files, never argv. */
  registerToken?: string | undefined;
  /** HOX_DATABASE_URL (`hox master`) */
  databaseUrl?: string | undefined;
  /** HOX_STORE_KEY_FILE (`hox master`) */
  storeKeyFile?: string | undefined;
  /** Reads all of stdin (`hox login --with-token -`). */
  readStdin?: () => Promise<string>;
  /**
   * Asks a question on the terminal and answers the line typed ('' on Ctrl-C or end of input); undefined
   * when stdin is not a terminal (a destruction then needs --yes).
   */
  askLine?: ((question: string) => Promise<string>) | undefined;
  /** Path of the CLI config file. */
  configPath: string;
  print: (line: string) => void;
  /** Progress and warnings (stderr), never mixed into --json output. */
  printErr: (line: string) => void;
  /**
   * Registers cleanup run on SIGINT/SIGTERM. A `service` (master, node, up) being stopped is its normal end:
   * exit 0. A `cleanup` is what an interrupted client command undoes: hox still exits 130 (SIGINT) or 143
   * (SIGTERM), as a shell expects of an interrupted command.
   */
  onStop: (stop: () => Promise<void>, kind?: 'service' | 'cleanup') => void;
  /** Resolves when SIGINT/SIGTERM arrives (for commands that run until stopped). */
  stopped: Promise<void>;
}
