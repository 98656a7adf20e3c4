// The packages on sale, loaded once for the caller's page: the Buy panel lists them, and the other panels
// name a card's or a payment's package by its name instead of its id.
import { createContext, useCallback, useContext, type ReactNode } from 'react';
import { useApi } from '../auth.tsx';
import { useRequest, type RequestState } from '../use-request.ts';

/** GET /time/pricing (src/sidecar/pricing-display.ts) */
export interface PricingTierView {
  id: string;
  name: string;
  hours: number;
  price_display: string;
  bonus_minutes: number;
  total_minutes: number;
  description: string;
  price_per_hour_display: string;
}

type PricingRequest = RequestState<{ pricing_tiers: PricingTierView[] }> & { reload: () => Promise<void> };
const PricingContext = createContext<PricingRequest | null>(null);

export function PricingProvider({ children }: { children: ReactNode }) {
  const api = useApi();
  const request = useRequest(() => api.get<{ pricing_tiers: PricingTierView[] }>('/time/pricing'));
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
