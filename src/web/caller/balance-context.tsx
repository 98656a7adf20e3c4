// The caller's balance, loaded once for the page and reloaded by whatever changes it (a redeemed code, a
// purchase landing, a call ending), so every panel shows the same figure.
import { createContext, useContext, type ReactNode } from 'react';
import { useApi } from '../auth.tsx';
import { useRequest, type RequestState } from '../use-request.ts';

/** GET /time/balance */
export interface BalanceView {
  user_id: string;
  total_minutes: number;
  total_seconds: number;
  card_count: number;
  next_expiry: string | null;
  cards: Array<{
    card_id: string;
    package_id: string | null;
    source: 'purchase' | 'gift' | 'adjustment';
    remaining_seconds: number;
    remaining_minutes: number;
    total_seconds: number;
    activated_at: string | null;
    expires_at: string;
  }>;
}

type BalanceRequest = RequestState<BalanceView> & { reload: () => Promise<void> };
const BalanceContext = createContext<BalanceRequest | null>(null);

export function BalanceProvider({ children }: { children: ReactNode }) {
  const api = useApi();
  const request = useRequest(() => api.get<BalanceView>('/time/balance'));
  return <BalanceContext.Provider value={request}>{children}</BalanceContext.Provider>;
}

export function useBalance(): BalanceRequest {
  const value = useContext(BalanceContext);
  if (!value) throw new Error('useBalance outside BalanceProvider');
  return value;
}
