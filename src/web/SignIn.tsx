import { useState, type FormEvent } from 'react';
import { LAST_USER_KEY, useAuth } from './auth.tsx';
import { ErrorMessage, Loading } from './ui.tsx';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function SignIn({ wantAdmin = false }: { wantAdmin?: boolean }) {
  const { config, ready } = useAuth();
  // Until the stored session is restored, a signed-in user would see the form flash (and could start typing).
  if (!ready) return <main className="narrow"><Loading /></main>;
  if (config.auth.mode === 'local') return <LocalSignIn wantAdmin={wantAdmin} />;
  if (config.auth.mode === 'supabase') return <SupabaseSignIn />;
  return <main className="narrow"><h1>MindBot</h1><ErrorMessage error={new Error(`Sign-in is unavailable: ${config.auth.reason}.`)} /></main>;
}

/** A form's submission: busy while it runs, its error kept to show. */
function useSubmission() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const run = async (action: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    try {
      await action();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, run };
}

function LocalSignIn({ wantAdmin }: { wantAdmin: boolean }) {
  const { signInLocal } = useAuth();
  const [userId, setUserId] = useState(() => localStorage.getItem(LAST_USER_KEY) ?? '');
  const [admin, setAdmin] = useState(wantAdmin);
  const { busy, error, run } = useSubmission();
  const trimmed = userId.trim();
  const invalid = trimmed !== '' && !UUID.test(trimmed);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (invalid) return;
    await run(() => signInLocal({ ...(trimmed ? { userId: trimmed } : {}), admin }));
  };

  return (
    <main className="narrow">
      <h1>MindBot</h1>
      <form className="card" onSubmit={(e) => void submit(e)} aria-labelledby="dev-sign-in-title">
        <h2 id="dev-sign-in-title">Development sign-in</h2>
        <p className="dev-banner" role="note">
          Local development mode: no password is checked and anyone can be any user. Only <code>./launch.sh dev</code>
          offers this sign-in, and only to this machine.
        </p>
        <label htmlFor="dev-user-id">User id (leave empty for a new user)</label>
        <input id="dev-user-id" name="user_id" value={userId} onChange={(e) => setUserId(e.target.value)}
          placeholder="6f1c2a9e-5b0d-4c8e-9a3f-2d7b1e4c5a60" autoComplete="off" spellCheck={false}
          aria-invalid={invalid} aria-describedby={invalid ? 'dev-user-id-error' : undefined} />
        {invalid && <p id="dev-user-id-error" className="field-error">A user id is a UUID, like 6f1c2a9e-5b0d-4c8e-9a3f-2d7b1e4c5a60.</p>}
        <label className="checkbox">
          <input type="checkbox" checked={admin} onChange={(e) => setAdmin(e.target.checked)} /> Sign in as an administrator
        </label>
        {error !== null && <ErrorMessage error={error} />}
        <button type="submit" disabled={busy || invalid}>{busy ? 'Signing in…' : 'Sign in'}</button>
      </form>
    </main>
  );
}

function SupabaseSignIn() {
  const { signInSupabase } = useAuth();
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [signUp, setSignUp] = useState(false);
  const { busy, error, run } = useSubmission();
  const [notice, setNotice] = useState<string | null>(null);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setNotice(null);
    await run(async () => {
      const { confirmEmail } = await signInSupabase({ email, password, signUp });
      if (confirmEmail) setNotice('Check your email to confirm your account, then sign in.');
    });
  };

  return (
    <main className="narrow">
      <h1>MindBot</h1>
      <form className="card" onSubmit={(e) => void submit(e)} aria-labelledby="sign-in-title">
        <h2 id="sign-in-title">{signUp ? 'Create an account' : 'Sign in'}</h2>
        <label htmlFor="email">Email</label>
        <input id="email" type="email" required autoComplete="email" value={email} onChange={(e) => setEmail(e.target.value)} />
        <label htmlFor="password">Password</label>
        <input id="password" type="password" required minLength={8} autoComplete={signUp ? 'new-password' : 'current-password'}
          value={password} onChange={(e) => setPassword(e.target.value)} />
        {error !== null && <ErrorMessage error={error} />}
        {notice && <p role="status">{notice}</p>}
        <button type="submit" disabled={busy}>{busy ? 'Please wait…' : signUp ? 'Create account' : 'Sign in'}</button>
        <button type="button" className="link" onClick={() => setSignUp(!signUp)}>
          {signUp ? 'I already have an account' : 'Create an account'}
        </button>
      </form>
    </main>
  );
}
