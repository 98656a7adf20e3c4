// Creates a plan (POST /admin/plans) or saves a plan's new version (POST /admin/plans/:key/versions: the
// offered version is retired with it, and its subscribers keep it). The form checks the rules of the plan's
// kind before sending, so most mistakes are named at once beside their field; the API checks them again (the
// SQL function create_plan is the rule), and what it refuses is shown beside the field it names as well. A new
// version sends only what was changed.
import { useEffect, useId, useRef, useState, type FormEvent } from 'react';
import { ApiError } from '../api.ts';
import { useApi } from '../auth.tsx';
import { ErrorMessage } from '../ui.tsx';
import { PlanWrite, type AdminPlan, type PlanKind } from '../../shared/admin-contracts.ts';
import { FieldError, fieldErrors, invalidProps } from './form-errors.tsx';
import { KIND_NAMES } from './plan-format.ts';

interface TierValues { upTo: string; rate: string }
interface Values {
  key: string;
  kind: PlanKind;
  name: string;
  description: string;
  currency: string;
  monthlyFeeCents: string;
  includedMinutes: string;
  defaultCapCents: string;
  maxCapCents: string;
  sortOrder: string;
  tiers: TierValues[];
}

const KINDS: PlanKind[] = ['payg', 'tiered', 'subscription', 'prepaid'];
const KEY = /^[a-z][a-z0-9_]{1,39}$/;
const RATE = /^\d+(\.\d{1,4})?$/;
const WHOLE = /^\d+$/;

function initialValues(plan: AdminPlan | null): Values {
  if (!plan) {
    return { key: '', kind: 'payg', name: '', description: '', currency: 'usd', monthlyFeeCents: '', includedMinutes: '',
      defaultCapCents: '5000', maxCapCents: '20000', sortOrder: '0', tiers: [{ upTo: '', rate: '' }] };
  }
  return {
    key: plan.key, kind: plan.kind, name: plan.name, description: plan.description, currency: plan.currency,
    monthlyFeeCents: String(plan.monthly_fee_cents), includedMinutes: String(plan.included_seconds / 60),
    defaultCapCents: plan.default_cap_cents === null ? '' : String(plan.default_cap_cents),
    maxCapCents: plan.max_cap_cents === null ? '' : String(plan.max_cap_cents), sortOrder: String(plan.sort_order),
    tiers: plan.tiers.map((t) => ({ upTo: t.up_to_seconds === null ? '' : String(t.up_to_seconds / 60), rate: String(t.cents_per_minute) })),
  };
}

/** The tiers a kind has: one rate (pay as you go, a subscription's overage), two or more (tiered), none (prepaid). */
function tiersFor(kind: PlanKind, tiers: TierValues[]): TierValues[] {
  if (kind === 'prepaid') return [];
  const first = tiers[0] ?? { upTo: '', rate: '' };
  if (kind !== 'tiered') return [{ upTo: '', rate: first.rate }];
  return tiers.length >= 2 ? tiers : [first, { upTo: '', rate: '' }];
}

const postpaid = (kind: PlanKind) => kind !== 'prepaid';

/**
 * The kind's rules, by the API's field names (the SQL function checks the same ones). For a new version, a
 * value left as the offered version has it is not checked again: the API took it (in seconds, which need not be
 * whole minutes), and it is not sent.
 */
export function validatePlan(values: Values, creating: boolean, initial: Values): Record<string, string> {
  const errors: Record<string, string> = {};
  const kept = (field: keyof Values) => !creating && JSON.stringify(values[field]) === JSON.stringify(initial[field]);
  if (creating && !KEY.test(values.key.trim())) errors.key = 'a plan key of 2 to 40 lower-case letters, digits or _, like pro_monthly';
  if (values.name.trim() === '' || values.name.trim().length > 80) errors.name = 'a name of 1 to 80 characters is required';
  if (values.description.length > 500) errors.description = 'at most 500 characters';
  if (!/^[A-Za-z]{3}$/.test(values.currency.trim())) errors.currency = 'a three-letter ISO currency code, like usd';
  if (!/^-?\d+$/.test(values.sortOrder.trim())) errors.sort_order = 'a whole number';
  if (values.kind === 'subscription') {
    if (!WHOLE.test(values.monthlyFeeCents.trim()) || Number(values.monthlyFeeCents) <= 0) {
      errors.monthly_fee_cents = 'a subscription needs a monthly fee: a whole number of cents above 0';
    }
    if (!kept('includedMinutes') && (!WHOLE.test(values.includedMinutes.trim()) || Number(values.includedMinutes) <= 0)) {
      errors.included_minutes = 'a subscription includes a whole number of minutes above 0';
    }
  }
  if (postpaid(values.kind)) {
    const caps = { default_cap_cents: values.defaultCapCents, max_cap_cents: values.maxCapCents };
    for (const [field, text] of Object.entries(caps)) {
      if (!WHOLE.test(text.trim()) || Number(text) <= 0) errors[field] = 'a whole number of cents above 0';
    }
    if (!errors.default_cap_cents && !errors.max_cap_cents && Number(caps.default_cap_cents) > Number(caps.max_cap_cents)) {
      errors.default_cap_cents = 'the default cap cannot be more than the maximum cap';
    }
    let previous = 0;
    if (!kept('tiers')) values.tiers.forEach((tier, i) => {
      if (!RATE.test(tier.rate.trim())) errors[`tiers.${i}.cents_per_minute`] = 'cents per minute: 0 or more, at most 4 decimals';
      if (values.kind !== 'tiered') return;
      const last = i === values.tiers.length - 1;
      if (last) {
        if (tier.upTo.trim() !== '') errors[`tiers.${i}.up_to_minutes`] = 'the last tier has no upper bound: it prices the rest';
      } else if (!WHOLE.test(tier.upTo.trim()) || Number(tier.upTo) <= previous) {
        errors[`tiers.${i}.up_to_minutes`] = `a whole number of minutes above ${previous}`;
      } else {
        previous = Number(tier.upTo);
      }
    });
    if (values.kind === 'tiered' && values.tiers.length < 2) errors.tiers = 'a tiered plan has at least two tiers';
  }
  return errors;
}

/** What the API refused, by field: its validation names the field; the SQL rules name it in their message. */
function serverErrors(error: unknown): Record<string, string> {
  if (!(error instanceof ApiError)) return {};
  if (error.code === 'invalid_request') return fieldErrors(error);
  if (error.code === 'plan_conflict') return { key: error.message };
  if (error.code !== 'invalid_argument') return {};
  const fields: [RegExp, string][] = [
    [/default_cap_cents/, 'default_cap_cents'], [/max_cap_cents|spending cap/, 'max_cap_cents'],
    [/monthly_fee_cents|monthly fee/, 'monthly_fee_cents'], [/included_seconds/, 'included_minutes'],
    [/tier/, 'tiers'], [/currency/, 'currency'], [/name/, 'name'], [/description/, 'description'],
  ];
  const field = fields.find(([pattern]) => pattern.test(error.message))?.[1] ?? '';
  return { [field]: error.message };
}

function body(values: Values, initial: Values, creating: boolean): Record<string, unknown> {
  const changed = (field: keyof Values) => creating || JSON.stringify(values[field]) !== JSON.stringify(initial[field]);
  const out: Record<string, unknown> = creating ? { key: values.key.trim(), kind: values.kind } : {};
  if (changed('name')) out.name = values.name.trim();
  if (changed('description') && (values.description !== '' || !creating)) out.description = values.description;
  if (changed('currency')) out.currency = values.currency.trim();
  if (changed('sortOrder')) out.sort_order = Number(values.sortOrder);
  if (values.kind === 'subscription') {
    if (changed('monthlyFeeCents')) out.monthly_fee_cents = Number(values.monthlyFeeCents);
    if (changed('includedMinutes')) out.included_minutes = Number(values.includedMinutes);
  }
  if (postpaid(values.kind)) {
    if (changed('defaultCapCents')) out.default_cap_cents = Number(values.defaultCapCents);
    if (changed('maxCapCents')) out.max_cap_cents = Number(values.maxCapCents);
    if (changed('tiers')) {
      out.tiers = values.tiers.map((t) => ({ ...(t.upTo.trim() !== '' && { up_to_minutes: Number(t.upTo) }), cents_per_minute: Number(t.rate) }));
    }
  }
  return out;
}

export function PlanForm({ plan, onSaved, onCancel }: {
  /** null: a new plan; else the offered version this form revises. */
  plan: AdminPlan | null;
  onSaved: (write: PlanWrite) => void;
  onCancel: () => void;
}) {
  const api = useApi();
  const id = useId();
  const creating = plan === null;
  const initial = useRef(initialValues(plan)).current;
  const [values, setValues] = useState(initial);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [checked, setChecked] = useState<Record<string, string>>({});
  const title = useRef<HTMLHeadingElement>(null);
  useEffect(() => title.current?.focus(), []);
  const errors = { ...serverErrors(error), ...checked };
  const set = <K extends keyof Values>(field: K, value: Values[K]) => setValues((v) => ({ ...v, [field]: value }));
  const setTier = (index: number, field: keyof TierValues, value: string) =>
    setValues((v) => ({ ...v, tiers: v.tiers.map((t, i) => (i === index ? { ...t, [field]: value } : t)) }));

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    const found = validatePlan(values, creating, initial);
    setChecked(found);
    if (Object.keys(found).length > 0) return;
    const payload = body(values, initial, creating);
    if (!creating && Object.keys(payload).length === 0) {
      setChecked({ '': 'Nothing was changed: a new version needs at least one change.' });
      return;
    }
    setBusy(true);
    try {
      onSaved(creating
        ? await api.post('/admin/plans', payload, PlanWrite)
        : await api.post(`/admin/plans/${encodeURIComponent(plan.key)}/versions`, payload, PlanWrite));
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  const input = (field: keyof Values, apiField: string, label: string, options: { hint?: string; number?: boolean } = {}) => {
    const inputId = `${id}-${field}`;
    const describedBy = [options.hint && `${inputId}-hint`, errors[apiField] && `${inputId}-error`].filter(Boolean).join(' ');
    return (
      <div className="field">
        <label htmlFor={inputId}>{label}</label>
        <input id={inputId} value={values[field] as string} {...(options.number && { inputMode: 'numeric' as const })}
          onChange={(e) => set(field, e.target.value as never)}
          {...invalidProps(errors, apiField, inputId)} aria-describedby={describedBy || undefined} />
        {options.hint && <p id={`${inputId}-hint`} className="hint">{options.hint}</p>}
        <FieldError errors={errors} field={apiField} inputId={inputId} />
      </div>
    );
  };

  const tierInput = (index: number, field: keyof TierValues, label: string) => {
    const apiField = `tiers.${index}.${field === 'rate' ? 'cents_per_minute' : 'up_to_minutes'}`;
    const inputId = `${id}-tier-${index}-${field}`;
    return (
      <div className="field">
        <label htmlFor={inputId}>{label}</label>
        <input id={inputId} inputMode="decimal" value={values.tiers[index]![field]} onChange={(e) => setTier(index, field, e.target.value)}
          {...invalidProps(errors, apiField, inputId)} />
        <FieldError errors={errors} field={apiField} inputId={inputId} />
      </div>
    );
  };

  const failed = Object.keys(checked).length > 0 || error !== null;
  return (
    <form className="panel" onSubmit={(e) => void submit(e)} noValidate aria-labelledby={`${id}-title`}>
      <h3 id={`${id}-title`} className="report-title" tabIndex={-1} ref={title}>
        {creating ? 'New plan' : `New version of ${plan.name}`}
      </h3>
      {!creating && (
        <p className="hint">Version {plan.version + 1} of <span className="code-small">{plan.key}</span> replaces version {plan.version} in
          the offer; version {plan.version} is retired, and its subscribers keep it until they change plans.</p>
      )}
      <div className="form-grid">
        {creating ? (
          <>
            {input('key', 'key', 'Plan key', { hint: '2 to 40 lower-case letters, digits or _, like team_monthly. It never changes.' })}
            <div className="field">
              <label htmlFor={`${id}-kind`}>Kind</label>
              <select id={`${id}-kind`} value={values.kind}
                onChange={(e) => { const kind = e.target.value as PlanKind; setValues((v) => ({ ...v, kind, tiers: tiersFor(kind, v.tiers) })); }}>
                {KINDS.map((k) => <option key={k} value={k}>{KIND_NAMES[k]}</option>)}
              </select>
            </div>
          </>
        ) : (
          <p className="field"><span className="label">Kind</span> {KIND_NAMES[plan.kind]}</p>
        )}
        {input('name', 'name', 'Name')}
        {input('currency', 'currency', 'Currency', { hint: 'A three-letter code, like usd.' })}
        {input('sortOrder', 'sort_order', 'Sort order', { number: true, hint: 'Lower comes first in the offer.' })}
        {values.kind === 'subscription' && (
          <>
            {input('monthlyFeeCents', 'monthly_fee_cents', 'Monthly fee in cents', { number: true, hint: '4900 is 49.00 a month.' })}
            {input('includedMinutes', 'included_minutes', 'Included minutes a month', { number: true })}
          </>
        )}
        {postpaid(values.kind) && (
          <>
            {input('defaultCapCents', 'default_cap_cents', 'Default spending cap in cents', { number: true,
              hint: 'A new subscriber’s cap for a period; calls stop at it.' })}
            {input('maxCapCents', 'max_cap_cents', 'Maximum spending cap in cents', { number: true, hint: 'The most a subscriber may set.' })}
          </>
        )}
        <div className="field wide">
          <label htmlFor={`${id}-description`}>Description</label>
          <textarea id={`${id}-description`} rows={2} value={values.description}
            onChange={(e) => set('description', e.target.value)} {...invalidProps(errors, 'description', `${id}-description`)} />
          <FieldError errors={errors} field="description" inputId={`${id}-description`} />
        </div>
      </div>
      {postpaid(values.kind) && (
        <fieldset aria-describedby={errors.tiers ? `${id}-tiers-error` : undefined}>
          <legend>{values.kind === 'tiered' ? 'Rates by the period’s minutes (graduated)'
            : values.kind === 'subscription' ? 'Overage rate, after the included minutes' : 'Rate'}</legend>
          {values.kind === 'tiered' && <p className="hint">Each tier prices the minutes up to its bound; the last prices the rest.</p>}
          {values.tiers.map((_, i) => (
            <div className="form-grid" key={i}>
              {values.kind === 'tiered' && tierInput(i, 'upTo', `Tier ${i + 1}: up to minute`)}
              {tierInput(i, 'rate', values.kind === 'tiered' ? `Tier ${i + 1}: cents per minute` : 'Cents per minute')}
              {values.kind === 'tiered' && values.tiers.length > 2 && (
                <div className="field"><button type="button" className="secondary"
                  onClick={() => set('tiers', values.tiers.filter((__, j) => j !== i))}>Remove tier {i + 1}</button></div>
              )}
            </div>
          ))}
          {values.kind === 'tiered' && values.tiers.length < 20 && (
            <button type="button" className="secondary" onClick={() => set('tiers', [...values.tiers, { upTo: '', rate: '' }])}>Add a tier</button>
          )}
          <FieldError errors={errors} field="tiers" inputId={`${id}-tiers`} />
        </fieldset>
      )}
      {failed && (
        <ErrorMessage error={new Error(error !== null
          ? `Not saved. The server said: ${error instanceof Error ? error.message : String(error)}`
          : errors[''] ?? 'Not saved: correct the fields marked.')} />
      )}
      <div className="actions">
        <button type="submit" disabled={busy}>{busy ? 'Saving…' : creating ? 'Create plan' : 'Save as a new version'}</button>
        <button type="button" className="secondary" onClick={onCancel}>Cancel</button>
      </div>
    </form>
  );
}
