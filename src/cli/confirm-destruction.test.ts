import { describe, expect, it } from 'vitest';
import { HoxError } from '../shared/errors.js';
import { confirmDestruction } from './confirm-destruction.js';
import { exitCodeFor } from './exit-codes.js';

const app = { what: "app 'crm'", name: 'crm', consequence: 'its database is dropped', command: 'hox app destroy crm' };

async function failure(promise: Promise<void>): Promise<HoxError> {
  const error: unknown = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(HoxError);
  return error as HoxError;
}

describe('confirming a destruction', () => {
  it('without a terminal, refuses with exit 2 naming --yes and the command', async () => {
    const error = await failure(confirmDestruction({ askLine: undefined }, { ...app, yes: false }));
    expect(exitCodeFor(error)).toBe(2);
    expect(error.message).toBe(
      "destroying app 'crm' (its database is dropped) needs --yes when there is no terminal to confirm on: hox app destroy crm --yes",
    );
  });

  it('--yes goes ahead without asking', async () => {
    const asked: string[] = [];
    const askLine = (q: string) => (asked.push(q), Promise.resolve(''));
    await confirmDestruction({ askLine }, { ...app, yes: true });
    await confirmDestruction({ askLine: undefined }, { ...app, yes: true });
    expect(asked).toEqual([]);
  });

  it('on a terminal, goes ahead once the name is typed, and only then', async () => {
    const asked: string[] = [];
    const answering = (answer: string) => (q: string) => (asked.push(q), Promise.resolve(answer));
    await confirmDestruction({ askLine: answering('crm\n') }, { ...app, yes: false });
    expect(asked).toEqual(["This destroys app 'crm' (its database is dropped). Type 'crm' to confirm: "]);
    const wrong = await failure(confirmDestruction({ askLine: answering('cr') }, { ...app, yes: false }));
    expect(exitCodeFor(wrong)).toBe(1);
    expect(wrong.message).toBe("not destroyed: 'cr' is not 'crm' (--yes skips the question)");
    const none = await failure(confirmDestruction({ askLine: answering('') }, { ...app, yes: false }));
    expect(none.message).toBe('not destroyed: nothing was typed (--yes skips the question)');
  });
});
