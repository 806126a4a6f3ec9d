import { api, ok } from '../api';
import { ErrorBox, Show, time, useLoad } from '../components';

/** Numbers of a usage totals object, as label/value rows. */
export function Totals({ totals }: { totals: unknown }) {
  const rows = Object.entries((totals ?? {}) as Record<string, unknown>).filter(
    ([, v]) => typeof v === 'number' || typeof v === 'string',
  );
  if (rows.length === 0) return <p class="muted">Nothing spent yet.</p>;
  return (
    <dl class="facts">
      {rows.map(([k, v]) => (
        <div key={k}>
          <dt>{k}</dt>
          <dd>{typeof v === 'number' ? v.toLocaleString() : String(v)}</dd>
        </div>
      ))}
    </dl>
  );
}

export function Overview() {
  const host = useLoad(() => ok(api.GET('/api/v1/organism')), []);
  const usage = useLoad(() => ok(api.GET('/api/v1/usage')), []);
  const budgets = useLoad(() => ok(api.GET('/api/v1/usage/threads')), []);
  const failed = useLoad(
    () => ok(api.GET('/api/v1/threads', { params: { query: { status: 'store_failed', limit: 5 } } })),
    [],
  );
  const exhausted = useLoad(
    () => ok(api.GET('/api/v1/threads', { params: { query: { status: 'budget_exhausted', limit: 5 } } })),
    [],
  );
  const recent = useLoad(() => ok(api.GET('/api/v1/frames', { params: { query: { last: 20 } } })), []);
  const errors = (recent.data ?? []).filter((t) => {
    const s = (t as { status?: string }).status;
    return s && s !== 'completed' && s !== 'running' && s !== 'waiting';
  }) as { thread: string; run: string; status: string }[];
  const warnings = (budgets.data ?? []).filter((b) => b.exhausted || b.percentUsed >= 80);
  return (
    <section aria-labelledby="overview-title">
      <h1 id="overview-title">Overview</h1>
      <div class="cards">
        <article class="card">
          <h2>Host</h2>
          <Show loaded={host}>
            {(h) => (
              <dl class="facts">
                <div><dt>Status</dt><dd data-testid="host-status">{h.status}</dd></div>
                <div><dt>Version</dt><dd>{h.version}</dd></div>
                <div><dt>Up for</dt><dd>{h.uptimeSeconds} s</dd></div>
                <div><dt>Active graph</dt><dd>{h.activeGraph ?? 'none'}</dd></div>
                <div><dt>Runs in flight</dt><dd>{h.runsInFlight}</dd></div>
                <div><dt>Threads</dt><dd>{h.threads}</dd></div>
                <div><dt>Graphs / plugins</dt><dd>{h.graphs} / {h.plugins}</dd></div>
              </dl>
            )}
          </Show>
        </article>
        <article class="card">
          <h2>Spend since the last reset</h2>
          <Show loaded={usage}>
            {(u) => {
              const since = (u as { sinceMs?: number }).sinceMs;
              return (
                <>
                  {since ? <p class="muted">Since {time(since)}</p> : null}
                  <Totals totals={(u as { totals?: unknown }).totals} />
                </>
              );
            }}
          </Show>
        </article>
        <article class="card">
          <h2>Budget warnings</h2>
          <ErrorBox error={budgets.error} />
          {warnings.length === 0 ? (
            <p class="muted">No thread is above 80% of its budget.</p>
          ) : (
            <ul>
              {warnings.map((b) => (
                <li key={b.threadId}>
                  <a href={`#/threads/${encodeURIComponent(b.threadId)}`}>{b.threadId}</a>: {b.used} of {b.limit} tokens
                  {b.exhausted ? ' (exhausted)' : ` (${Math.round(b.percentUsed)}%)`}
                </li>
              ))}
            </ul>
          )}
        </article>
        <article class="card">
          <h2>Recent errors</h2>
          <ErrorBox error={recent.error ?? failed.error ?? exhausted.error} />
          {errors.length === 0 && !failed.data?.total && !exhausted.data?.total ? (
            <p class="muted">No failed runs recently.</p>
          ) : (
            <ul>
              {errors.map((t) => (
                <li key={t.run}>
                  <a href={`#/threads/${encodeURIComponent(t.thread)}`}>{t.thread}</a>: run {t.run} {t.status}
                </li>
              ))}
              {[...(failed.data?.items ?? []), ...(exhausted.data?.items ?? [])].map((t) => (
                <li key={t.id}>
                  <a href={`#/threads/${encodeURIComponent(t.id)}`}>{t.id}</a>: {t.status}
                </li>
              ))}
            </ul>
          )}
        </article>
      </div>
    </section>
  );
}
