import { describe, expect, it } from 'vitest';
import { parameterDiff } from './parameter-diff.js';

describe('the parameters an update in place changes', () => {
  it('lists each key added, changed or removed, sorted, nothing for equal values', () => {
    expect(
      parameterDiff(
        { greeting: 'bonjour', port: 8080, nested: { a: 1, b: 2 }, same: [1, 2] },
        { port: 8081, nested: { b: 2, a: 1 }, same: [1, 2], delay_ms: 10 },
      ),
    ).toEqual(['+ delay_ms = 10', '- greeting (was bonjour)', '~ port: 8080 → 8081']);
    expect(parameterDiff({ a: 1 }, { a: 1 })).toEqual([]);
  });

  it('never shows a secret-looking value', () => {
    const diff = parameterDiff({ admin_password: 'old-secret' }, { admin_password: 'new-secret', api_key: 'k' });
    expect(diff.join('\n')).not.toMatch(/secret|'k'/);
    expect(diff).toEqual(['~ admin_password: •••••• → ••••••', '+ api_key = ••••••']);
  });
});
