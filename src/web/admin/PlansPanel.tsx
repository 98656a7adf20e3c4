// Plans (GET /admin/plans, retired versions included): every version with its tiers and prices per hour; a
// new plan of any kind; an edit saved as a new version (the offered one is retired with it, and its subscribers
// keep it); retiring a plan after a confirmation. The rules are the SQL functions' (migrations/018).
import { useEffect, useRef, useState } from 'react';
import { useApi } from '../auth.tsx';
import { formatDate, formatMoney } from '../format.ts';
import { useRequest } from '../use-request.ts';
import { ErrorMessage, Loaded, Section, TableScroll } from '../ui.tsx';
import { AdminPlanList, PlanWrite, type AdminPlan } from '../../shared/admin-contracts.ts';
import { PlanForm } from './PlanForm.tsx';
import { KIND_NAMES, formatHour, formatRate, tierRange } from './plan-format.ts';

const minutes = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });

function Prices({ plan }: { plan: AdminPlan }) {
  const c = plan.currency;
  if (plan.kind === 'prepaid') {
    return (
      <ul className="plain">
        {(plan.packs ?? []).map((p) => (
          <li key={p.package_id}>{p.name}: {formatMoney(p.price_cents, p.currency)} ({formatHour(p.cents_per_hour, p.currency)})</li>
        ))}
      </ul>
    );
  }
  return (
    <ul className="plain">
      {plan.kind === 'subscription' && (
        <li>{formatMoney(plan.monthly_fee_cents, c)} a month, {minutes.format(plan.included_minutes)} min included
          {plan.price_per_hour.included_cents_per_hour !== null && ` (${formatHour(plan.price_per_hour.included_cents_per_hour, c)})`}</li>
      )}
      {plan.tiers.map((t, i) => (
        <li key={t.position}>
          {plan.kind === 'subscription' ? 'then ' : `${tierRange(plan.tiers, i)}: `}
          {formatRate(t.cents_per_minute, c)} ({formatHour(t.cents_per_hour, c)})
        </li>
      ))}
    </ul>
  );
}

export function PlansPanel({ onChanged }: { onChanged?: () => void }) {
  const api = useApi();
  const request = useRequest(() => api.get('/admin/plans?include_retired=true', AdminPlanList), []);
  const [editing, setEditing] = useState<AdminPlan | 'new' | null>(null);
  const [confirming, setConfirming] = useState<AdminPlan | null>(null);
  const [notice, setNotice] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  // The confirmation appears above the table the button was in: the keyboard goes to it.
  const confirmTitle = useRef<HTMLHeadingElement>(null);
  useEffect(() => { if (confirming) confirmTitle.current?.focus(); }, [confirming]);

  const changed = (text: string) => {
    setEditing(null);
    setConfirming(null);
    setError(null);
    setNotice(text);
    void request.reload();
    onChanged?.();
  };
  const saved = (write: PlanWrite) => changed(typeof write.retired === 'object'
    ? `Saved ${write.plan.name} as version ${write.plan.version} of ${write.plan.key}; version ${write.retired.version} is retired.`
    : `Created the plan ${write.plan.name} (${write.plan.key}).`);

  const retire = async (plan: AdminPlan) => {
    setBusy(true);
    setError(null);
    try {
      const write = await api.post(`/admin/plans/${encodeURIComponent(plan.key)}/retire`, undefined, PlanWrite);
      changed(write.retired === false ? `${plan.name} was retired already.`
        : `Retired ${write.plan.name} (${write.plan.key}): it has left the offer; its subscribers keep it until they change.`);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  return (
    <Section title="Plans" id="plans"
      actions={<button type="button" onClick={() => { setNotice(''); setEditing('new'); }} disabled={editing === 'new'}>New plan</button>}>
      <div role="status" className="notice">{notice && <p className="success">{notice}</p>}</div>
      {error !== null && <ErrorMessage error={error} />}
      {editing !== null && (
        <PlanForm key={editing === 'new' ? 'new' : editing.plan_id} plan={editing === 'new' ? null : editing}
          onSaved={saved} onCancel={() => setEditing(null)} />
      )}
      {confirming && (
        <div className="panel" role="group" aria-labelledby="retire-plan-title">
          <h3 id="retire-plan-title" className="report-title" tabIndex={-1} ref={confirmTitle}>Retire {confirming.name}?</h3>
          <p>{confirming.key} leaves the offer and its key is never used again. Its subscribers keep version {confirming.version} until
            they change plans.</p>
          <div className="actions">
            <button type="button" className="danger" disabled={busy} onClick={() => void retire(confirming)}>
              {busy ? 'Retiring…' : 'Yes, retire'}
            </button>
            <button type="button" className="secondary" onClick={() => setConfirming(null)}>Keep it</button>
          </div>
        </div>
      )}
      <Loaded request={request} label="Loading plans…">
        {({ plans }) => (
          <TableScroll label="Plans">
            <table className="compact" aria-label="Plans">
              <thead>
                <tr>
                  <th scope="col">Plan</th><th scope="col">Prices</th><th scope="col" className="num">Caps</th>
                  <th scope="col">Status</th><th scope="col"><span className="visually-hidden">Actions</span></th>
                </tr>
              </thead>
              <tbody>
                {plans.map((p) => (
                  <tr key={p.plan_id}>
                    <th scope="row">{p.name}<br /><span className="muted code-small">{p.key} v{p.version}</span>
                      <br /><span className="muted">{KIND_NAMES[p.kind]}</span></th>
                    <td className="wrap"><Prices plan={p} /></td>
                    <td className="num">{p.max_cap_cents === null ? '—'
                      : <>{formatMoney(p.default_cap_cents ?? 0, p.currency)}<br /><span className="muted">max {formatMoney(p.max_cap_cents, p.currency)}</span></>}</td>
                    <td>{p.status === 'active' ? 'Offered' : <>Retired<br /><span className="muted">{formatDate(p.retired_at)}</span></>}</td>
                    <td>
                      {p.status === 'active' && (
                        <div className="actions">
                          <button type="button" className="secondary" aria-label={`Edit ${p.name} as a new version`}
                            onClick={() => { setNotice(''); setConfirming(null); setEditing(p); }}>Edit</button>
                          <button type="button" className="danger" aria-label={`Retire ${p.name}`}
                            onClick={() => { setNotice(''); setEditing(null); setConfirming(p); }}>Retire</button>
                        </div>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableScroll>
        )}
      </Loaded>
    </Section>
  );
}
