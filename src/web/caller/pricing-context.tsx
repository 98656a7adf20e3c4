// The packages on sale, loaded once for the caller's page: the Buy panel lists them, and the other panels
// name a card's or a payment's package by its name instead of its id.
import { createContext, useCallback, useContext, type ReactNode } from 'react';
import { useApi } from '../auth.tsx';
import { useRequest, type RequestState } from '../use-request.ts';
import { PricingResponse, type PricingTierView } from '../../shared/api-contracts.ts';

export type { PricingTierView };


type PricingRequest = RequestState<PricingResponse> & { reload: () => Promise<void> };
const PricingContext = createContext<PricingRequest | null>(null);

export function PricingProvider({ children }: { children: ReactNode }) {
  const api = useApi();
  const request = useRequest(() => api.get('/time/pricing', PricingResponse));
  return <PricingContext.Provider value={request}>{children}</PricingContext.Provider>;
}

export function usePricing(): PricingRequest {
  const value = useContext(PricingContext);
  if (!value) throw new Error('usePricing outside PricingProvider');
  return value;
}

/** A package's name; its id while the list loads, or for a package no longer on sale. */
export function usePackageName(): (id: string | null) => string | null {
  const tiers = usePricing().data?.pricing_tiers;
  return useCallback((id) => (id === null ? null : tiers?.find((t) => t.id === id)?.name ?? id), [tiers]);
}
