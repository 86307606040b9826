/** What commands get from the composition root (src/bin): the only window on env, stdout and signals. */
export interface CommandEnv {
  /** HOX_ADMIN_TOKEN */
  adminToken: string | undefined;
  /** HOX_MASTER_URL */
  masterUrl: string | undefined;
  /** HOX_TOKEN */
  token: string | undefined;
  /** Path of the CLI config file. */
  configPath: string;
  print: (line: string) => void;
  /** Progress and warnings (stderr), never mixed into --json output. */
  printErr: (line: string) => void;
  /** Registers cleanup run on SIGINT/SIGTERM. */
  onStop: (stop: () => Promise<void>) => void;
  /** Resolves when SIGINT/SIGTERM arrives (for commands that run until stopped). */
  stopped: Promise<void>;
}
