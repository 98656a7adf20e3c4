// The caller's page (/): balance, talk, buy, redeem, history.
import { useAuth } from '../auth.tsx';

export function CallerApp() {
  const { session } = useAuth();
  return (
    <main>
      <h1>Your MindBot time</h1>
      <p className="muted">Signed in as <span className="code">{session?.email ?? session?.userId}</span></p>
    </main>
  );
}
