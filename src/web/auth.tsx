// Who is using the app. With Supabase configured: Supabase Auth (email and password) in the browser, its
// access token sent to the sidecar. Locally: the clearly marked development sign-in, where the sidecar signs a
// token for any user id you type (it is off in production).
import { createContext, useCallback, useContext, useEffect, useMemo, useRef, useState, type ReactNode } from 'react';
import type { SupabaseClient } from '@supabase/supabase-js';
import { createApi, type ApiClient } from './api.ts';
import type { AppConfig } from './app-config.ts';
import { DevSignInResponse } from '../shared/api-contracts.ts';

export interface Session {
  token: string;
  userId: string;
  email: string | null;
  /** Local sign-in only: whether the token carries the admin role (the admin API decides in any case). */
  admin: boolean;
  expiresAt: number;
}

interface AuthContextValue {
  config: AppConfig;
  session: Session | null;
  /**
   * False until the stored session is known: in Supabase mode supabase-js restores it from localStorage (and
   * refreshes it if it is about to expire) asynchronously, so until then "no session" means "not known yet".
   */
  ready: boolean;
  api: ApiClient;
  signInLocal(input: { userId?: string; admin: boolean }): Promise<void>;
  signInSupabase(input: { email: string; password: string; signUp: boolean }): Promise<{ confirmEmail: boolean }>;
  signOut(): Promise<void>;
}

const AuthContext = createContext<AuthContextValue | null>(null);
const STORAGE_KEY = 'mindbot.local-session';
export const LAST_USER_KEY = 'mindbot.last-dev-user';

function storedLocalSession(): Session | null {
  try {
    const raw = localStorage.getItem(STORAGE_KEY);
    if (!raw) return null;
    const session = JSON.parse(raw) as Session;
    return session.expiresAt > Date.now() + 60_000 ? session : null;
  } catch {
    return null;
  }
}

export function AuthProvider({ config, children }: { config: AppConfig; children: ReactNode }) {
  const [session, setSession] = useState<Session | null>(() => (config.auth.mode === 'local' ? storedLocalSession() : null));
  const [ready, setReady] = useState(config.auth.mode !== 'supabase');
  const tokenRef = useRef<string | null>(session?.token ?? null);
  tokenRef.current = session?.token ?? null;
  const supabaseRef = useRef<SupabaseClient | null>(null);
  const api = useMemo(() => createApi(() => tokenRef.current), []);

  useEffect(() => {
    if (config.auth.mode !== 'supabase') return;
    let unsubscribe = () => {};
    // The import resolves after a cleanup that ran in the meantime (StrictMode's second mount in development):
    // then no client, or two clients would share the storage key and both keep refreshing the session.
    let cancelled = false;
    const { supabase_url: url, supabase_anon_key: key } = config.auth;
    void import('@supabase/supabase-js').then(({ createClient }) => {
      if (cancelled) return;
      const client = createClient(url, key, { auth: { persistSession: true, autoRefreshToken: true } });
      supabaseRef.current = client;
      const { data } = client.auth.onAuthStateChange((_event, s) => {
        setSession(s ? {
          token: s.access_token, userId: s.user.id, email: s.user.email ?? null, admin: false,
          expiresAt: (s.expires_at ?? 0) * 1000,
        } : null);
        // Any event means the stored session is known: INITIAL_SESSION once it is restored (or known absent), or
        // TOKEN_REFRESHED / SIGNED_IN when restoring it refreshed it first.
        setReady(true);
      });
      unsubscribe = () => data.subscription.unsubscribe();
    });
    return () => {
      cancelled = true;
      unsubscribe();
    };
  }, [config]);

  const signInLocal = useCallback(async ({ userId, admin }: { userId?: string; admin: boolean }) => {
    const answer = await api.post('/auth/dev-sign-in', { ...(userId ? { user_id: userId } : {}), admin }, DevSignInResponse);
    const next: Session = {
      token: answer.access_token, userId: answer.user_id, email: null, admin: answer.admin,
      expiresAt: Date.now() + answer.expires_in * 1000,
    };
    localStorage.setItem(STORAGE_KEY, JSON.stringify(next));
    localStorage.setItem(LAST_USER_KEY, answer.user_id);
    setSession(next);
  }, [api]);

  const signInSupabase = useCallback(async ({ email, password, signUp }: { email: string; password: string; signUp: boolean }) => {
    const client = supabaseRef.current;
    if (!client) throw new Error('Sign-in is still loading. Try again in a moment.');
    const { data, error } = signUp
      ? await client.auth.signUp({ email, password })
      : await client.auth.signInWithPassword({ email, password });
    if (error) throw new Error(error.message);
    return { confirmEmail: signUp && !data.session };
  }, []);

  const signOut = useCallback(async () => {
    localStorage.removeItem(STORAGE_KEY);
    const client = supabaseRef.current;
    if (client) {
      // A failed logout request (offline, 5xx) must not leave the stored session behind: a reload would sign
      // the user back in after they chose to sign out.
      const { error } = await client.auth.signOut();
      if (error) await client.auth.signOut({ scope: 'local' });
    }
    setSession(null);
  }, []);

  const value = useMemo(() => ({ config, session, ready, api, signInLocal, signInSupabase, signOut }),
    [config, session, ready, api, signInLocal, signInSupabase, signOut]);
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

export function useAuth(): AuthContextValue {
  const value = useContext(AuthContext);
  if (!value) throw new Error('useAuth outside AuthProvider');
  return value;
}

/** The API client of the signed-in user. */
export function useApi(): ApiClient {
  return useAuth().api;
}
