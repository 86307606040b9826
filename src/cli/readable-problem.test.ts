import { describe, expect, it } from 'vitest';
import { readableProblem } from './readable-problem.js';

describe('readableProblem', () => {
  it('drops the command line of a command promise and the instantiating prefix, nothing else', () => {
    expect(readableProblem("while instantiating: promise p: command ['a b', 'it\\'s']: exit 2: broken [x]")).toBe(
      'promise p: broken [x]',
    );
    expect(readableProblem('promise keeper: tcp 127.0.0.1:5: connection refused')).toBe(
      'promise keeper: tcp 127.0.0.1:5: connection refused',
    );
  });
});
