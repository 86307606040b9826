/** What commands get from the composition root (src/bin): the only window on env, stdout and signals. */
export interface CommandEnv {
  /** HOX_ADMIN_TOKEN */
  adminToken: string | undefined;
  /** HOX_MASTER_URL */
  masterUrl: string | undefined;
  print: (line: string) => void;
  /** Registers cleanup run on SIGINT/SIGTERM. */
  onStop: (stop: () => Promise<void>) => void;
}
