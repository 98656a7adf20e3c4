// The caller's plan, loaded once for the page: what the plan is now with its invoices (GET /api/plans/current)
// and this period in its terms (GET /api/usage/current). The picker, the period view and the invoice list show
// the same answers, and whatever changes the plan (a change, a cancellation, a new cap) reloads both.
import { createContext, useCallback, useContext, useMemo, type ReactNode } from 'react';
import { useApi } from '../auth.tsx';
import { useRequest, type RequestState } from '../use-request.ts';
import { CurrentPlanResponse, UsageCurrentResponse } from '../../shared/api-contracts.ts';

type Loadable<T> = RequestState<T> & { reload: () => Promise<void> };

interface PlanState {
  current: Loadable<CurrentPlanResponse>;
  usage: Loadable<UsageCurrentResponse>;
  reload: () => Promise<void>;
}

const PlanContext = createContext<PlanState | null>(null);

export function PlanProvider({ children, refreshKey = 0 }: { children: ReactNode; refreshKey?: number }) {
  const api = useApi();
  const current = useRequest(() => api.get('/api/plans/current', CurrentPlanResponse), [refreshKey]);
  const usage = useRequest(() => api.get('/api/usage/current', UsageCurrentResponse), [refreshKey]);
  const { reload: reloadCurrent } = current;
  const { reload: reloadUsage } = usage;
  const reload = useCallback(async () => { await Promise.all([reloadCurrent(), reloadUsage()]); }, [reloadCurrent, reloadUsage]);
  const value = useMemo(() => ({ current, usage, reload }), [current, usage, reload]);
  return <PlanContext.Provider value={value}>{children}</PlanContext.Provider>;
}

export function usePlan(): PlanState {
  const value = useContext(PlanContext);
  if (!value) throw new Error('usePlan outside PlanProvider');
  return value;
}
