// The caller's balance, loaded once for the page and reloaded by whatever changes it (a redeemed code, a
// purchase landing, a call ending), so every panel shows the same figure.
import { createContext, useContext, type ReactNode } from 'react';
import { useApi } from '../auth.tsx';
import { useRequest, type RequestState } from '../use-request.ts';
import { BalanceResponse } from '../../shared/api-contracts.ts';

/** GET /time/balance */
export type BalanceView = BalanceResponse;


type BalanceRequest = RequestState<BalanceView> & { reload: () => Promise<void> };
const BalanceContext = createContext<BalanceRequest | null>(null);

export function BalanceProvider({ children }: { children: ReactNode }) {
  const api = useApi();
  const request = useRequest(() => api.get('/time/balance', BalanceResponse));
  return <BalanceContext.Provider value={request}>{children}</BalanceContext.Provider>;
}

export function useBalance(): BalanceRequest {
  const value = useContext(BalanceContext);
  if (!value) throw new Error('useBalance outside BalanceProvider');
  return value;
}
