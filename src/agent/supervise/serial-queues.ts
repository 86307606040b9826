/** Operations that must not overlap, per key (a partition): each runs after the previous one settled. */
export class SerialQueues {
  readonly #tails = new Map<string, Promise<void>>();

  /** Runs `operation` after every operation queued before under `key`; settles as it does. */
  run<T>(key: string, operation: () => Promise<T>): Promise<T> {
    const result = (this.#tails.get(key) ?? Promise.resolve()).then(operation);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.#tails.set(key, tail);
    void tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return result;
  }

  /** Settles once everything queued so far has settled. Never rejects. */
  async idle(): Promise<void> {
    await Promise.all(this.#tails.values());
  }
}

/** Awaits every promise, then throws the first rejection if any (Promise.all would leave the others unawaited). */
export async function settleAll(promises: Promise<unknown>[]): Promise<void> {
  const results = await Promise.allSettled(promises);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
}
