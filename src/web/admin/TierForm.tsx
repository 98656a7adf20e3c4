// Creates a pricing tier (POST /admin/tiers) or changes one (PATCH /admin/tiers/:id). The API validates;
// its messages appear beside the fields they name. An edit sends only the fields that were changed, so an
// untouched value is never rewritten through a unit conversion.
import { useEffect, useId, useRef, useState, type FormEvent } from 'react';
import { useApi } from '../auth.tsx';
import { TierWrite, type PricingTier } from '../../shared/admin-contracts.ts';
import { FieldError, FormError, fieldErrors, invalidProps } from './form-errors.tsx';

interface Values {
  id: string;
  name: string;
  description: string;
  hours: string;
  bonusMinutes: string;
  priceCents: string;
  currency: string;
  sortOrder: string;
  stripePriceId: string;
  active: boolean;
}

function initialValues(tier: PricingTier | null): Values {
  if (!tier) {
    return { id: '', name: '', description: '', hours: '', bonusMinutes: '0', priceCents: '', currency: 'usd',
      sortOrder: '0', stripePriceId: '', active: true };
  }
  return {
    id: tier.id, name: tier.name, description: tier.description,
    hours: String(tier.base_seconds / 3600), bonusMinutes: String(tier.bonus_seconds / 60),
    priceCents: String(tier.price_cents), currency: tier.currency, sortOrder: String(tier.sort_order),
    stripePriceId: tier.stripe_price_id ?? '', active: tier.active,
  };
}

/** A typed number as the API should see it: empty stays absent; anything else is sent for the API to judge. */
const numberOrNull = (text: string) => (text.trim() === '' || Number.isNaN(Number(text)) ? null : Number(text));

/** The request body: every filled-in field for a new tier, the changed ones for an edit. */
function body(values: Values, initial: Values, creating: boolean): Record<string, unknown> {
  const changed = (field: keyof Values) => creating || values[field] !== initial[field];
  const out: Record<string, unknown> = {};
  if (creating) out.id = values.id.trim();
  if (changed('name')) out.name = values.name;
  if (changed('description') && (values.description !== '' || !creating)) out.description = values.description;
  if (changed('hours') && values.hours.trim() !== '') out.hours = numberOrNull(values.hours);
  if (changed('bonusMinutes') && values.bonusMinutes.trim() !== '') {
    const minutes = numberOrNull(values.bonusMinutes);
    out.bonus_seconds = minutes === null ? null : Math.round(minutes * 60);
  }
  if (changed('priceCents') && values.priceCents.trim() !== '') out.price_cents = numberOrNull(values.priceCents);
  if (changed('currency') && values.currency.trim() !== '') out.currency = values.currency.trim();
  if (changed('sortOrder') && values.sortOrder.trim() !== '') out.sort_order = numberOrNull(values.sortOrder);
  if (changed('stripePriceId') && (values.stripePriceId.trim() !== '' || !creating)) {
    out.stripe_price_id = values.stripePriceId.trim() === '' ? null : values.stripePriceId.trim();
  }
  if (changed('active')) out.active = values.active;
  return out;
}

export function TierForm({ tier, onSaved, onCancel }: {
  /** null: a new tier. */
  tier: PricingTier | null;
  onSaved: (write: TierWrite) => void;
  onCancel: () => void;
}) {
  const api = useApi();
  const id = useId();
  const creating = tier === null;
  const initial = useRef(initialValues(tier)).current;
  const [values, setValues] = useState(initial);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const set = <K extends keyof Values>(field: K) => (value: Values[K]) => setValues((v) => ({ ...v, [field]: value }));
  const errors = fieldErrors(error);
  const title = useRef<HTMLHeadingElement>(null);
  // Opening the form takes the keyboard to it: it appears above the table the button was in.
  useEffect(() => title.current?.focus(), []);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const payload = body(values, initial, creating);
      const write = creating
        ? await api.post('/admin/tiers', payload, TierWrite)
        : await api.patch(`/admin/tiers/${encodeURIComponent(tier.id)}`, payload, TierWrite);
      onSaved(write);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  const text = (field: keyof Values, apiField: string, label: string, options: { hint?: string; type?: string; wide?: boolean } = {}) => {
    const inputId = `${id}-${field}`;
    const describedBy = [options.hint && `${inputId}-hint`, errors[apiField] && `${inputId}-error`].filter(Boolean).join(' ');
    return (
      <div className={options.wide ? 'field wide' : 'field'}>
        <label htmlFor={inputId}>{label}</label>
        <input id={inputId} type={options.type ?? 'text'} value={values[field] as string}
          {...(options.type === 'number' && { inputMode: 'decimal', step: 'any' })}
          onChange={(e) => set(field)(e.target.value as never)}
          {...invalidProps(errors, apiField, inputId)} aria-describedby={describedBy || undefined} />
        {options.hint && <p id={`${inputId}-hint`} className="hint">{options.hint}</p>}
        <FieldError errors={errors} field={apiField} inputId={inputId} />
      </div>
    );
  };

  return (
    <form className="panel" onSubmit={(e) => void submit(e)} noValidate aria-labelledby={`${id}-title`}>
      <h3 id={`${id}-title`} className="report-title" tabIndex={-1} ref={title}>{creating ? 'New tier' : `Edit ${tier.name}`}</h3>
      <div className="form-grid">
        {creating
          ? text('id', 'id', 'Tier id', { hint: '2 to 40 lower-case letters, digits or _, like starter_1h. It cannot change later.' })
          : <p className="field"><span className="label">Tier id</span> <span className="code">{tier.id}</span></p>}
        {text('name', 'name', 'Name')}
        {text('hours', 'hours', 'Hours of talk time', { type: 'number', hint: 'May be fractional, like 1.5.' })}
        {text('bonusMinutes', 'bonus_seconds', 'Bonus minutes', { type: 'number' })}
        {text('priceCents', 'price_cents', 'Price in cents', { type: 'number', hint: '999 is 9.99 in the currency.' })}
        {text('currency', 'currency', 'Currency', { hint: 'A three-letter code, like usd.' })}
        {text('sortOrder', 'sort_order', 'Sort order', { type: 'number', hint: 'Lower comes first in the price list.' })}
        {text('stripePriceId', 'stripe_price_id', 'Stripe price id (optional)', { hint: 'price_…; empty for none.' })}
        <div className="field wide">
          <label htmlFor={`${id}-description`}>Description</label>
          <textarea id={`${id}-description`} rows={2} value={values.description}
            onChange={(e) => set('description')(e.target.value)} {...invalidProps(errors, 'description', `${id}-description`)} />
          <FieldError errors={errors} field="description" inputId={`${id}-description`} />
        </div>
        <label className="checkbox field wide">
          <input type="checkbox" checked={values.active} onChange={(e) => set('active')(e.target.checked)} />
          Active (offered in the price list)
        </label>
      </div>
      <FormError error={error} />
      <div className="actions">
        <button type="submit" disabled={busy}>{busy ? 'Saving…' : creating ? 'Create tier' : 'Save changes'}</button>
        <button type="button" className="secondary" onClick={onCancel}>Cancel</button>
      </div>
    </form>
  );
}
