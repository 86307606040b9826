import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { HoxError } from '../shared/errors.js';
import { SecretBox, newStoreKeyText, parseStoreKey } from './secret-box.js';

const box = (): SecretBox => new SecretBox(randomBytes(32), 'test key');

function expectKeyError(run: () => unknown, message: RegExp): void {
  let caught: unknown;
  try {
    run();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(HoxError);
  expect((caught as HoxError).code).toBe('HOX_STORE_KEY');
  expect((caught as HoxError).message).toMatch(message);
}

describe('SecretBox', () => {
  it('seals a value so that its text is not in the result, and opens it back', () => {
    const b = box();
    const plaintext = '{"cluster_secret":"s3cr3t-value"}';
    const sealed = b.seal(plaintext, 'instance.parameters:I-1');
    expect(sealed.startsWith('hox:v1:')).toBe(true);
    expect(sealed).not.toContain('s3cr3t');
    expect(b.open(sealed, 'instance.parameters:I-1')).toBe(plaintext);
  });

  it('uses a fresh nonce per value: the same plaintext seals differently each time', () => {
    const b = box();
    const seals = new Set(Array.from({ length: 100 }, () => b.seal('{}', 'c')));
    expect(seals.size).toBe(100);
  });

  it('refuses another key, another place and an altered byte, naming the place and the key', () => {
    const b = box();
    const sealed = b.seal('{"password":"x"}', 'instance.parameters:I-1');
    expectKeyError(() => box().open(sealed, 'instance.parameters:I-1'), /instance\.parameters:I-1 .*store key k-/);
    expectKeyError(() => b.open(sealed, 'instance.parameters:I-2'), /instance\.parameters:I-2/);
    expectKeyError(() => b.open(sealed, 'instance.connection_parameters:I-1'), /connection_parameters/);
    const raw = Buffer.from(sealed.slice('hox:v1:'.length), 'base64url');
    raw[20] = (raw[20] ?? 0) ^ 1;
    expectKeyError(() => b.open(`hox:v1:${raw.toString('base64url')}`, 'instance.parameters:I-1'), /altered/);
    expectKeyError(() => b.open('hox:v1:AAAA', 'c'), /does not decrypt/);
  });

  it('reads plaintext written by a version before encryption as it is', () => {
    expect(box().open('{"a":1}', 'instance.parameters:I-1')).toBe('{"a":1}');
    expect(SecretBox.isSealed('{"a":1}')).toBe(false);
  });

  it('parses a generated key file and names keys by a stable id; refuses anything else', () => {
    const text = newStoreKeyText();
    const a = parseStoreKey(text, '/k');
    expect(parseStoreKey(`  ${text.trim()}  \n\n`, '/k').keyId).toBe(a.keyId);
    expect(a.keyId).toMatch(/^k-[0-9a-f]{16}$/);
    expect(a.keyId).not.toBe(parseStoreKey(newStoreKeyText(), '/k').keyId);
    expectKeyError(
      () => parseStoreKey('not a key', '/etc/hox/store.key'),
      /\/etc\/hox\/store\.key does not hold a key/,
    );
    expectKeyError(() => parseStoreKey(randomBytes(16).toString('base64'), '/k'), /does not hold a key/);
  });
});
