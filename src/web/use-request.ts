import { useCallback, useEffect, useRef, useState } from 'react';

export type RequestState<T> =
  | { status: 'loading'; data: T | null; error: null }
  | { status: 'ok'; data: T; error: null }
  | { status: 'error'; data: T | null; error: Error };

/**
 * Runs `load` when `key` changes and on reload(); keeps the last data while reloading so a refresh does not
 * blank the screen. An answer that arrives after a newer request started is dropped.
 */
export function useRequest<T>(load: () => Promise<T>, key: unknown[] = []): RequestState<T> & { reload: () => Promise<void> } {
  const [state, setState] = useState<RequestState<T>>({ status: 'loading', data: null, error: null });
  const generation = useRef(0);
  const loadRef = useRef(load);
  loadRef.current = load;
  const reload = useCallback(async () => {
    const mine = ++generation.current;
    setState((s) => ({ status: 'loading', data: s.data, error: null }));
    try {
      const data = await loadRef.current();
      if (mine === generation.current) setState({ status: 'ok', data, error: null });
    } catch (error) {
      if (mine === generation.current) {
        setState((s) => ({ status: 'error', data: s.data, error: error instanceof Error ? error : new Error(String(error)) }));
      }
    }
  }, []);
  // eslint-disable-next-line react-hooks/exhaustive-deps
  useEffect(() => { void reload(); }, key);
  return { ...state, reload };
}
