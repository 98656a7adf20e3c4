// The sidecar refuses bad input with 400 invalid_request and a message of "field: problem" parts joined by
// "; " (src/sidecar/app.ts, input()). A form shows the whole message in an alert next to it, and each part
// beside the field it names, so the reader sees where to look.
import { ApiError } from '../api.ts';
import { ErrorMessage } from '../ui.tsx';

/** The parts of a validation message by field name ("" for parts about the whole request). */
export function fieldErrors(error: unknown): Record<string, string> {
  if (!(error instanceof ApiError) || error.code !== 'invalid_request') return {};
  const byField: Record<string, string> = {};
  for (const part of error.message.split('; ')) {
    const match = /^([\w.]+): (.+)$/.exec(part);
    const field = match && match[1] !== 'body' ? match[1]! : '';
    const text = match ? match[2]! : part;
    byField[field] = byField[field] ? `${byField[field]}; ${text}` : text;
  }
  return byField;
}

/** Props for an input the server may have refused, tying it to its message. */
export function invalidProps(errors: Record<string, string>, field: string, inputId: string) {
  return errors[field] ? { 'aria-invalid': true, 'aria-describedby': `${inputId}-error` } : {};
}

export function FieldError({ errors, field, inputId }: { errors: Record<string, string>; field: string; inputId: string }) {
  const text = errors[field];
  return text ? <p id={`${inputId}-error`} className="field-error">{text}</p> : null;
}

/** The form's alert: the server's words, prefixed so a screen reader knows nothing was saved. */
export function FormError({ error }: { error: unknown }) {
  if (error === null) return null;
  return <ErrorMessage error={error instanceof ApiError && error.code === 'invalid_request'
    ? new Error(`Not saved. The server said: ${error.message}`) : error} />;
}
