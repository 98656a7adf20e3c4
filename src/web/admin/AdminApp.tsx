// The administrators' page (/admin): revenue, the books, usage, users, tiers, adjustments, refunds, the Stripe
// events that need attention, and postpaid plans (plans, subscribers, MRR and usage, invoices, meter drift),
// from the admin API.
// The first request (the revenue report) decides who may see the page: a 403 from it shows the refusal, and
// no other panel asks the API anything before it answered.
import { useState } from 'react';
import { ApiError } from '../api.ts';
import { useApi } from '../auth.tsx';
import { useRequest } from '../use-request.ts';
import { ErrorMessage, Loading } from '../ui.tsx';
import { RevenueReport } from '../../shared/admin-contracts.ts';
import { AdminOnly } from './AdminOnly.tsx';
import { AttentionPanel } from './AttentionPanel.tsx';
import { BooksPanel } from './BooksPanel.tsx';
import { InvoicesPanel } from './InvoicesPanel.tsx';
import { MeterDriftPanel } from './MeterDriftPanel.tsx';
import { PlansPanel } from './PlansPanel.tsx';
import { PlanUsagePanel } from './PlanUsagePanel.tsx';
import { SubscribersPanel } from './SubscribersPanel.tsx';
import { RevenuePanel } from './RevenuePanel.tsx';
import { TiersPanel } from './TiersPanel.tsx';
import { UsagePanel } from './UsagePanel.tsx';
import { UsersPanel } from './UsersPanel.tsx';
import './admin.css';

const PERIODS = [7, 30, 90, 365] as const;

export function AdminApp() {
  const api = useApi();
  const [days, setDays] = useState<number>(30);
  // null: the report's own choice (the currency most paid in over the period).
  const [currency, setCurrency] = useState<string | null>(null);
  // Bumped when a plan is created, revised or retired: the plan panels read their lists again.
  const [plansVersion, setPlansVersion] = useState(0);
  const revenue = useRequest(() => api.get(
    `/admin/analytics/revenue?days=${days}${currency ? `&currency=${encodeURIComponent(currency)}` : ''}`, RevenueReport), [days, currency]);

  if (revenue.error instanceof ApiError && revenue.error.status === 403) return <AdminOnly />;
  if (revenue.data === null) {
    return (
      <main className="narrow">
        <h1>MindBot administration</h1>
        {revenue.status === 'error'
          ? <ErrorMessage error={revenue.error} onRetry={() => void revenue.reload()} />
          : <Loading label="Checking your access…" />}
      </main>
    );
  }

  return (
    <main className="admin">
      <h1>MindBot administration</h1>
      <nav aria-label="Admin sections" className="admin-nav">
        <a href="#revenue">Revenue</a>
        <a href="#books">Books</a>
        <a href="#usage">Usage</a>
        <a href="#users">Users</a>
        <a href="#tiers">Pricing tiers</a>
        <a href="#plans">Plans</a>
        <a href="#subscribers">Subscribers</a>
        <a href="#plan-usage">MRR, by plan and by agent</a>
        <a href="#invoices">Invoices</a>
        <a href="#meter-drift">Meter drift</a>
        <a href="#attention">Needs attention</a>
      </nav>
      <div className="admin-toolbar">
        <div className="field">
          <label htmlFor="report-period">Report period</label>
          <select id="report-period" value={days} onChange={(e) => setDays(Number(e.target.value))}>
            {PERIODS.map((d) => <option key={d} value={d}>The last {d} days</option>)}
          </select>
        </div>
      </div>
      <RevenuePanel request={revenue} onCurrency={setCurrency} />
      <BooksPanel />
      <UsagePanel days={days} />
      <UsersPanel />
      <TiersPanel />
      <PlansPanel onChanged={() => setPlansVersion((v) => v + 1)} />
      <SubscribersPanel version={plansVersion} />
      <PlanUsagePanel days={days} version={plansVersion} />
      <InvoicesPanel version={plansVersion} />
      <MeterDriftPanel version={plansVersion} />
      <AttentionPanel />
    </main>
  );
}
