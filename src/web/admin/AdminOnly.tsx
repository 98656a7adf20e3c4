// What someone who is not an administrator sees at /admin: a plain refusal, no figures. The admin API is
// the judge (it answered 403); the browser's idea of who is an administrator is not.
import { useAuth } from '../auth.tsx';

export function AdminOnly() {
  const { session } = useAuth();
  return (
    <main className="narrow">
      <h1>Administrators only</h1>
      <div className="error" role="alert">
        <p>This page is for MindBot administrators, and the server says your account is not one.</p>
      </div>
      <p>
        You are signed in as <span className="user-id">{session?.email ?? session?.userId}</span>. If you should
        have access, ask an administrator to add your user id to ADMIN_USER_IDS, then sign in again.
      </p>
      <p><a href="/">Go to your MindBot time</a></p>
    </main>
  );
}
