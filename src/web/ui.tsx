// Small building blocks every screen uses, so that loading and errors look and read the same everywhere.
import { useLayoutEffect, useRef, useState, type ReactNode } from 'react';
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

/**
 * The box around a table, which scrolls sideways when the table is wider than the screen (a phone). While it
 * scrolls, it takes the keyboard's focus, named after its table, so that a keyboard user can reach the columns
 * out of view with the arrow keys (WCAG 2.1.1); while the whole table fits, it is no extra tab stop.
 */
export function TableScroll({ label, labelledBy, children }: { label?: string; labelledBy?: string; children: ReactNode }) {
  const box = useRef<HTMLDivElement>(null);
  const [scrolls, setScrolls] = useState(false);
  useLayoutEffect(() => {
    const element = box.current;
    if (!element) return;
    const measure = () => setScrolls(element.scrollWidth > element.clientWidth);
    measure();
    const observer = new ResizeObserver(measure);
    observer.observe(element);
    if (element.firstElementChild) observer.observe(element.firstElementChild);
    return () => observer.disconnect();
  }, []);
  const focusable = scrolls ? { tabIndex: 0, role: 'group', 'aria-label': label, 'aria-labelledby': labelledBy } : {};
  return <div ref={box} className="table-wrap" {...focusable}>{children}</div>;
}
