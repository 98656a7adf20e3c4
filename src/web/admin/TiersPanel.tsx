// The price list, inactive tiers included (GET /admin/tiers): create, edit and deactivate. Deactivating never
// deletes (cards and payments refer to their tier); the tier leaves the public price list and can return.
import { useState } from 'react';
import { useApi } from '../auth.tsx';
import { formatDuration, formatMoney } from '../format.ts';
import { useRequest } from '../use-request.ts';
import { ErrorMessage, Loaded, Section, TableScroll } from '../ui.tsx';
import { PricingTierList, TierWrite, type PricingTier } from '../../shared/admin-contracts.ts';
import { TierForm } from './TierForm.tsx';

export function TiersPanel() {
  const api = useApi();
  const request = useRequest(() => api.get('/admin/tiers', PricingTierList));
  // 'new', a tier being edited, or nothing.
  const [editing, setEditing] = useState<PricingTier | 'new' | null>(null);
  const [notice, setNotice] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [busyId, setBusyId] = useState<string | null>(null);

  const saved = (write: TierWrite) => {
    setEditing(null);
    setError(null);
    setNotice(write.created ? `Created the tier ${write.tier.name} (${write.tier.id}).` : `Saved the tier ${write.tier.name}.`);
    void request.reload();
  };

  const deactivate = async (tier: PricingTier) => {
    setBusyId(tier.id);
    setError(null);
    setNotice('');
    try {
      const write = await api.delete(`/admin/tiers/${encodeURIComponent(tier.id)}`, TierWrite);
      setNotice(`Deactivated ${write.tier.name}: it has left the public price list. Cards already sold keep their time.`);
      void request.reload();
    } catch (e) {
      setError(e);
    } finally {
      setBusyId(null);
    }
  };

  return (
    <Section title="Pricing tiers" id="tiers"
      actions={<button type="button" onClick={() => { setNotice(''); setEditing('new'); }} disabled={editing === 'new'}>New tier</button>}>
      <div role="status" className="notice">{notice && <p className="success">{notice}</p>}</div>
      {error !== null && <ErrorMessage error={error} />}
      {editing !== null && (
        <TierForm key={editing === 'new' ? 'new' : editing.id} tier={editing === 'new' ? null : editing}
          onSaved={saved} onCancel={() => setEditing(null)} />
      )}
      <Loaded request={request} label="Loading the price list…">
        {({ pricing_tiers: tiers }) => (
          <TableScroll label="Pricing tiers">
            <table className="compact" aria-label="Pricing tiers">
              <thead>
                <tr>
                  <th scope="col">Tier</th><th scope="col" className="num">Talk time</th><th scope="col" className="num">Price</th>
                  <th scope="col" className="num">Order</th><th scope="col">Status</th>
                  <th scope="col"><span className="visually-hidden">Actions</span></th>
                </tr>
              </thead>
              <tbody>
                {tiers.map((t) => (
                  <tr key={t.id}>
                    <th scope="row">{t.name}<br /><span className="muted code-small">{t.id}</span></th>
                    <td className="num">
                      {formatDuration(t.total_seconds)}
                      {t.bonus_seconds > 0 && <><br /><span className="muted">incl. {formatDuration(t.bonus_seconds)} bonus</span></>}
                    </td>
                    <td className="num">{formatMoney(t.price_cents, t.currency)}</td>
                    <td className="num">{t.sort_order}</td>
                    <td>{t.active ? 'Active' : 'Inactive'}</td>
                    <td>
                      <div className="actions">
                        <button type="button" className="secondary" aria-label={`Edit ${t.name}`}
                          onClick={() => { setNotice(''); setEditing(t); }}>Edit</button>
                        {t.active && (
                          <button type="button" className="danger" aria-label={`Deactivate ${t.name}`}
                            disabled={busyId === t.id} onClick={() => void deactivate(t)}>
                            {busyId === t.id ? 'Deactivating…' : 'Deactivate'}
                          </button>
                        )}
                      </div>
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
