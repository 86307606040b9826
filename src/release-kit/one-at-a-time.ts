/**
 * A job that runs one at a time, for a release's programs that re-apply their configuration when it changes: a
 * call while the job runs asks for one more run after it (however many calls came meanwhile), so the last change
 * is always applied and two applications never overlap.
 *
 * @example
 * const poke = oneAtATime(apply, (error) => log(`could not apply: ${error.message}`));
 * watchFile(configPath, poke);
 */
export function oneAtATime(job: () => Promise<void>, onError: (error: Error) => void): () => void {
  let running = false;
  let again = false;
  return () => {
    if (running) {
      again = true;
      return;
    }
    running = true;
    void (async () => {
      do {
        again = false;
        try {
          await job();
        } catch (error) {
          onError(error instanceof Error ? error : new Error(String(error)));
        }
      } while (again);
      running = false;
    })();
  };
}
