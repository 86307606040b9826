/**
 * Signing in: a token, as `hox login` takes one (the admin's from `hox up` / `hox master`, a user's from
 * `hox user create` or `hox user token`). It is checked by the master before the console shows anything.
 */
import { useState } from 'preact/hooks';

export function SignIn(props: { problem: string | null; onToken(token: string): Promise<void> }) {
  const [token, setToken] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    const value = token.trim();
    if (value === '') return;
    setBusy(true);
    await props.onToken(value);
    setBusy(false);
  };
  return (
    <main id="main" class="sign-in">
      <h1>HyperOpenX console</h1>
      <form onSubmit={(e) => void submit(e)}>
        <label for="token">Token</label>
        <input
          id="token"
          name="token"
          type="password"
          autoComplete="off"
          spellcheck={false}
          required
          value={token}
          aria-describedby="token-help"
          aria-invalid={props.problem !== null}
          onInput={(e) => setToken(e.currentTarget.value)}
        />
        <p id="token-help" class="help">
          The admin token <code>hox up</code> printed (also in the data directory's <code>admin-token</code>), or a user
          token from <code>hox user token NAME</code>. It stays in this tab only.
        </p>
        {props.problem === null ? null : (
          <p class="error" role="alert">
            {props.problem}
          </p>
        )}
        <button type="submit" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}
