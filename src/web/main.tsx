import './zod-jitless.ts';
import { StrictMode, useEffect, useState } from 'react';
import { createRoot } from 'react-dom/client';
import type { AppConfig } from './app-config.ts';
import { AppConfigResponse } from '../shared/api-contracts.ts';
import { AuthProvider, useAuth } from './auth.tsx';
import { SignIn } from './SignIn.tsx';
import { ErrorMessage, Loading } from './ui.tsx';
import { CallerApp } from './caller/CallerApp.tsx';
import { AdminApp } from './admin/AdminApp.tsx';
import './styles.css';

function Pages() {
  const { session, signOut } = useAuth();
  const admin = location.pathname === '/admin';
  if (!session) return <SignIn wantAdmin={admin} />;
  return (
    <>
      <header className="topbar">
        <a href="/" className="brand">MindBot</a>
        <nav aria-label="Main">
          <a href="/" aria-current={admin ? undefined : 'page'}>My time</a>
          <a href="/admin" aria-current={admin ? 'page' : undefined}>Admin</a>
        </nav>
        <button type="button" className="secondary" onClick={() => void signOut()}>Sign out</button>
      </header>
      {admin ? <AdminApp /> : <CallerApp />}
    </>
  );
}

function Root() {
  const [config, setConfig] = useState<AppConfig | null>(null);
  const [error, setError] = useState<unknown>(null);
  const load = () => {
    setError(null);
    fetch('/app/config', { headers: { accept: 'application/json' } })
      .then(async (r) => {
        if (!r.ok) throw new Error(`The server answered ${r.status} when asked for its configuration.`);
        setConfig(AppConfigResponse.parse(await r.json()));
      })
      .catch((e: unknown) => setError(e instanceof TypeError ? new Error('Could not reach the MindBot server.') : e));
  };
  useEffect(load, []);
  if (error !== null) return <main className="narrow"><ErrorMessage error={error} onRetry={load} /></main>;
  if (!config) return <main className="narrow"><Loading /></main>;
  return <AuthProvider config={config}><Pages /></AuthProvider>;
}

createRoot(document.getElementById('root')!).render(<StrictMode><Root /></StrictMode>);
