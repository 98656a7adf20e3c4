// Small building blocks every screen uses, so that loading and errors look and read the same everywhere.
import type { ReactNode } from 'react';
import { ApiError } from './api.ts';
import type { RequestState } from './use-request.ts';

export function Loading({ label = 'Loading…' }: { label?: string }) {
  return <p className="loading" role="status" aria-live="polite">{label}</p>;
}

/** The message of an error, as the server worded it when it said something. */
export function errorText(error: unknown): string {
  if (error instanceof ApiError) return error.message;
  if (error instanceof Error) return error.message;
  return String(error);
}

export function ErrorMessage({ error, onRetry }: { error: unknown; onRetry?: (() => void) | undefined }) {
  return (
    <div className="error" role="alert">
      <p>{errorText(error)}</p>
      {onRetry && <button type="button" className="secondary" onClick={onRetry}>Try again</button>}
    </div>
  );
}

/** Renders data when there is some; a spinner before the first answer; the error with a retry button. */
export function Loaded<T>({ request, children, label }: {
  request: RequestState<T> & { reload: () => Promise<void> };
  children: (data: T) => ReactNode;
  label?: string;
}) {
  return (
    <>
      {request.status === 'error' && <ErrorMessage error={request.error} onRetry={() => void request.reload()} />}
      {request.data !== null ? children(request.data) : request.status === 'loading' && <Loading label={label} />}
    </>
  );
}

export function Section({ title, id, children, actions }: { title: string; id: string; children: ReactNode; actions?: ReactNode }) {
  return (
    <section className="card" aria-labelledby={`${id}-title`} id={id}>
      <header className="card-header">
        <h2 id={`${id}-title`}>{title}</h2>
        {actions}
      </header>
      {children}
    </section>
  );
}
