// Small pieces every view shares: loading with errors shown, buttons that
// show progress and the API's message, pagers.

import type { ComponentChildren } from 'preact';
import { useCallback, useEffect, useState } from 'preact/hooks';
import { message } from './api';

export interface Loaded<T> {
  data?: T;
  error?: string;
  loading: boolean;
  reload: () => void;
}

/** Runs `load` now and whenever `deps` change; `reload` runs it again. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): Loaded<T> {
  const [state, setState] = useState<{ data?: T; error?: string; loading: boolean }>({ loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    load().then(
      (data) => live && setState({ data, loading: false }),
      (e) => live && setState((s) => ({ data: s.data, error: message(e), loading: false })),
    );
    return () => {
      live = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { ...state, reload };
}

export function ErrorBox({ error }: { error: string | undefined }) {
  if (!error) return null;
  return (
    <p class="error" role="alert">
      {error}
    </p>
  );
}

/** Shows what `loaded` holds, its error, or that it is loading. */
export function Show<T>({ loaded, children }: { loaded: Loaded<T>; children: (data: T) => ComponentChildren }) {
  return (
    <>
      <ErrorBox error={loaded.error} />
      {loaded.data !== undefined ? children(loaded.data) : loaded.loading ? <p class="muted">Loading…</p> : null}
    </>
  );
}

/**
 * A button for an act: disabled with a progress note while it runs, the
 * API's message beside it when it fails, `done`'s text when it succeeds.
 */
export function Act({
  label,
  run,
  busy = 'Working…',
  confirm,
  kind,
  testId,
}: {
  label: string;
  run: () => Promise<string | void>;
  busy?: string;
  confirm?: string;
  kind?: 'danger';
  testId?: string;
}) {
  const [state, setState] = useState<{ running: boolean; error?: string; done?: string }>({ running: false });
  const click = async () => {
    if (confirm && !window.confirm(confirm)) return;
    setState({ running: true });
    try {
      const done = await run();
      setState({ running: false, done: done || undefined });
    } catch (e) {
      setState({ running: false, error: message(e) });
    }
  };
  return (
    <span class="act">
      <button type="button" class={kind} disabled={state.running} onClick={click} data-testid={testId} data-mutates="">
        {label}
      </button>
      {state.running && (
        <span class="progress" role="status">
          {busy}
        </span>
      )}
      {state.error && (
        <span class="error" role="alert">
          {state.error}
        </span>
      )}
      {state.done && (
        <span class="done" role="status">
          {state.done}
        </span>
      )}
    </span>
  );
}

/** Previous/next over `total` items, `limit` a page. */
export function Pager({
  total,
  limit,
  offset,
  onPage,
}: {
  total: number;
  limit: number;
  offset: number;
  onPage: (offset: number) => void;
}) {
  const last = Math.max(0, total - 1);
  const from = total === 0 ? 0 : offset + 1;
  const to = Math.min(total, offset + limit);
  return (
    <nav class="pager" aria-label="pages">
      <button type="button" disabled={offset === 0} onClick={() => onPage(Math.max(0, offset - limit))}>
        Previous
      </button>
      <span>
        {from}–{to} of {total}
      </span>
      <button type="button" disabled={offset + limit > last} onClick={() => onPage(offset + limit)}>
        Next
      </button>
    </nav>
  );
}

export function time(ms: number | null | undefined): string {
  if (!ms) return '—';
  return new Date(ms).toLocaleString();
}

export function micros(us: number): string {
  return us >= 1000 ? `${(us / 1000).toFixed(1)} ms` : `${us} µs`;
}

export function Json({ value }: { value: unknown }) {
  return <pre class="json" tabIndex={0}>{JSON.stringify(value, null, 2)}</pre>;
}

export function short(hash: string | null | undefined): string {
  return hash ? hash.slice(0, 12) : '—';
}
