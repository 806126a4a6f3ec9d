import { useState } from 'preact/hooks';
import { type Access, type Schemas, api, ok } from '../api';
import { Act, Show, time, useLoad } from '../components';
import { Totals } from './Overview';

/** A number of a totals object: tokens (prompt + completion) if it has them. */
function amount(v: unknown): number {
  if (typeof v === 'number') return v;
  const o = (v ?? {}) as Record<string, unknown>;
  for (const k of ['tokens', 'totalTokens', 'total_tokens']) if (typeof o[k] === 'number') return o[k] as number;
  const p = (typeof o.promptTokens === 'number' ? o.promptTokens : (o.prompt_tokens as number | undefined)) ?? 0;
  const c = (typeof o.completionTokens === 'number' ? o.completionTokens : (o.completion_tokens as number | undefined)) ?? 0;
  return p + c;
}

function Bars({ title, data }: { title: string; data: unknown }) {
  const rows = Object.entries((data ?? {}) as Record<string, unknown>).map(([k, v]) => [k, amount(v)] as const);
  const max = Math.max(1, ...rows.map(([, n]) => n));
  return (
    <article class="card">
      <h2>{title}</h2>
      {rows.length === 0 ? (
        <p class="muted">Nothing yet.</p>
      ) : (
        <ul class="bars">
          {rows.map(([k, n]) => (
            <li key={k}>
              <span class="label">{k}</span>
              <span class="bar" style={{ width: `${(100 * n) / max}%` }} aria-hidden="true" />
              <span class="value">{n.toLocaleString()} tokens</span>
            </li>
          ))}
        </ul>
      )}
    </article>
  );
}

export function Usage({ access }: { access: Access }) {
  const usage = useLoad(() => ok(api.GET('/api/v1/usage')), []);
  const budgets = useLoad(() => ok(api.GET('/api/v1/usage/threads')), []);
  const [amount, setAmount] = useState('1000');
  /** Raises or sets a thread's token budget. */
  const changeThread = async (id: string, body: { raise: number } | { limit: number }) => {
    const v = await ok(api.PUT('/api/v1/usage/threads/{id}/budget', { params: { path: { id } }, body }));
    budgets.reload();
    return `Now ${v.limit}`;
  };
  return (
    <section aria-labelledby="usage-title">
      <h1 id="usage-title">Usage and budgets</h1>
      <Show loaded={usage}>
        {(u) => {
          const o = u as Record<string, unknown>;
          return (
            <div class="cards">
              <article class="card">
                <h2>Totals</h2>
                <Totals totals={o.totals} />
              </article>
              {o.byNode !== undefined && <Bars title="By node" data={o.byNode} />}
              {o.byModel !== undefined && <Bars title="By model" data={o.byModel} />}
              {o.byProject !== undefined && <Bars title="By project" data={o.byProject} />}
            </div>
          );
        }}
      </Show>
      <Series />
      <ProjectBudget access={access} projects={Object.keys(((usage.data ?? {}) as Record<string, unknown>).byProject ?? {})} />
      <h2>Thread budgets</h2>
      {access.acts && (
        <label>
          Tokens (to raise by, or the new limit)
          <input
            type="number"
            min="1"
            value={amount}
            data-testid="thread-amount"
            onInput={(e) => setAmount((e.target as HTMLInputElement).value)}
          />
        </label>
      )}
      <Show loaded={budgets}>
        {(list) =>
          list.length === 0 ? (
            <p class="muted">No thread has a budget.</p>
          ) : (
            <div class="scroll" tabIndex={0}>
              <table>
                <thead>
                  <tr>
                    <th scope="col">Thread</th>
                    <th scope="col">Project</th>
                    <th scope="col">Used</th>
                    <th scope="col">Limit</th>
                    {access.acts && <th scope="col">Change</th>}
                  </tr>
                </thead>
                <tbody>
                  {list.map((b) => (
                    <tr key={b.threadId}>
                      <td>
                        <a href={`#/threads/${encodeURIComponent(b.threadId)}`}>{b.threadId}</a>
                      </td>
                      <td>{b.project}</td>
                      <td>
                        {b.used} ({Math.round(b.percentUsed)}%){b.exhausted ? ', exhausted' : ''}
                      </td>
                      <td>{b.limit}</td>
                      {access.acts && (
                        <td>
                          <Act label="Raise" run={() => changeThread(b.threadId, { raise: Number(amount) })} />
                          <Act label="Set" run={() => changeThread(b.threadId, { limit: Number(amount) })} />
                        </td>
                      )}
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )
        }
      </Show>
    </section>
  );
}

function money(n: number | null | undefined): string {
  return n === null || n === undefined ? 'unlimited' : n.toLocaleString(undefined, { maximumFractionDigits: 4 });
}

const WINDOW_WORDS: Record<string, string> = { daily: 'per UTC day', monthly: 'per UTC month', none: 'in all' };

function budgetLine(b: Schemas['ProjectBudgetView']): string {
  const limit = b.limit === null || b.limit === undefined ? 'no limit' : `limit ${money(b.limit)} ${WINDOW_WORDS[b.window] ?? b.window}`;
  const pct = b.limit ? ` (${Math.round(b.percentUsed)}%)` : '';
  const reserved = b.reserved ? `, ${money(b.reserved)} reserved by calls in flight` : '';
  const ends = b.windowEndMs ? `; the window ends ${time(b.windowEndMs)}` : '';
  return `${b.project}: ${limit}; spent ${money(b.spent)}${pct}${reserved}${b.exhausted ? ', exhausted' : ''}${ends}`;
}

/** A project's money budget: shown to every key of the project, changed by operators. */
function ProjectBudget({ access, projects }: { access: Access; projects: string[] }) {
  const mine = access.who.project ?? null;
  const [project, setProject] = useState(mine ?? 'default');
  const [limit, setLimit] = useState('10');
  const [period, setPeriod] = useState<'daily' | 'monthly' | 'none'>('monthly');
  const [raise, setRaise] = useState('5');
  const budget = useLoad(
    () => ok(api.GET('/api/v1/usage/projects/{project}/budget', { params: { path: { project } } })),
    [project],
  );
  const change = async (
    body: { raise: number } | { limit: number; window: 'daily' | 'monthly' | 'none' } | { unlimited: true },
    verb: string,
  ) => {
    const b = await ok(api.PUT('/api/v1/usage/projects/{project}/budget', { params: { path: { project } }, body }));
    budget.reload();
    return `${verb}: ${budgetLine(b)}`;
  };
  const choices = [...new Set(['default', ...projects, ...(mine ? [mine] : [])])].sort();
  return (
    <section aria-labelledby="project-budget-title">
      <h2 id="project-budget-title">Project money budget</h2>
      <div class="inline-form">
        {mine ? (
          <p>
            Project <strong>{mine}</strong>
          </p>
        ) : (
          <label>
            Project
            <input
              list="budget-projects"
              value={project}
              data-testid="budget-project"
              onChange={(e) => setProject((e.target as HTMLInputElement).value.trim() || 'default')}
            />
            <datalist id="budget-projects">
              {choices.map((p) => (
                <option key={p} value={p} />
              ))}
            </datalist>
          </label>
        )}
      </div>
      <Show loaded={budget}>{(b) => <p data-testid="project-budget">{budgetLine(b)}</p>}</Show>
      {access.acts && (
        <div class="actions">
          <span class="inline-form">
            <label>
              Limit
              <input
                type="number"
                min="0"
                step="any"
                value={limit}
                data-testid="project-limit"
                onInput={(e) => setLimit((e.target as HTMLInputElement).value)}
              />
            </label>
            <label>
              Window
              <select
                value={period}
                data-testid="project-window"
                onChange={(e) => setPeriod((e.target as HTMLSelectElement).value as typeof period)}
              >
                <option value="daily">daily</option>
                <option value="monthly">monthly</option>
                <option value="none">none (all time)</option>
              </select>
            </label>
            <Act
              label="Set limit"
              testId="set-project-limit"
              run={() => change({ limit: Number(limit), window: period }, 'Limit set')}
            />
          </span>
          <span class="inline-form">
            <label>
              Raise by
              <input
                type="number"
                min="0"
                step="any"
                value={raise}
                data-testid="project-raise"
                onInput={(e) => setRaise((e.target as HTMLInputElement).value)}
              />
            </label>
            <Act label="Raise" testId="raise-project" run={() => change({ raise: Number(raise) }, 'Raised')} />
          </span>
          <Act
            label="Remove the limit"
            kind="danger"
            confirm={`Remove ${project}'s money limit? Its spend is still counted.`}
            run={() => change({ unlimited: true }, 'Limit removed')}
          />
        </div>
      )}
    </section>
  );
}

const PALETTE = ['#1d4ed8', '#b91c1c', '#047857', '#7c3aed', '#b45309', '#0e7490', '#be185d', '#4b5563'];
type Measure = 'tokens' | 'cost' | 'calls';

function measure(p: Schemas['SeriesPointView'], m: Measure): number {
  return m === 'tokens' ? p.promptTokens + p.completionTokens : m === 'cost' ? p.cost : p.calls;
}

/** Usage over time: one line per project, node or model. */
function Series() {
  const [by, setBy] = useState<'project' | 'node' | 'model'>('project');
  const [bucket, setBucket] = useState<'hour' | 'day'>('hour');
  const [what, setWhat] = useState<Measure>('tokens');
  const series = useLoad(
    () => ok(api.GET('/api/v1/usage/series', { params: { query: { by, bucket } } })),
    [by, bucket],
  );
  return (
    <section aria-labelledby="series-title">
      <h2 id="series-title">Over time</h2>
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <label>
          By
          <select value={by} data-testid="series-by" onChange={(e) => setBy((e.target as HTMLSelectElement).value as typeof by)}>
            <option value="project">project</option>
            <option value="node">node</option>
            <option value="model">model</option>
          </select>
        </label>
        <label>
          Per
          <select value={bucket} onChange={(e) => setBucket((e.target as HTMLSelectElement).value as typeof bucket)}>
            <option value="hour">hour (last 24)</option>
            <option value="day">day (last 24)</option>
          </select>
        </label>
        <label>
          Showing
          <select value={what} onChange={(e) => setWhat((e.target as HTMLSelectElement).value as Measure)}>
            <option value="tokens">tokens</option>
            <option value="cost">spend</option>
            <option value="calls">model calls</option>
          </select>
        </label>
      </form>
      <Show loaded={series}>{(s) => <Chart series={s} what={what} />}</Show>
    </section>
  );
}

function Chart({ series, what }: { series: Schemas['UsageSeries']; what: Measure }) {
  if (series.keys.length === 0) return <p class="muted">No model calls in this range.</p>;
  const buckets = Math.max(1, Math.ceil((series.untilMs - series.sinceMs) / series.bucketMs));
  const first = Math.floor(series.sinceMs / series.bucketMs) * series.bucketMs;
  const [w, h, pad] = [720, 200, 36];
  const values = new Map<string, number[]>(series.keys.map((k) => [k, new Array(buckets + 1).fill(0)]));
  for (const p of series.points) {
    const i = Math.round((p.startMs - first) / series.bucketMs);
    const row = values.get(p.key);
    if (row && i >= 0 && i < row.length) row[i] += measure(p, what);
  }
  const max = Math.max(1e-9, ...[...values.values()].flat());
  const x = (i: number) => pad + (i * (w - 2 * pad)) / Math.max(1, buckets);
  const y = (v: number) => h - pad - (v * (h - 2 * pad)) / max;
  const label = what === 'tokens' ? 'tokens' : what === 'cost' ? 'spend' : 'model calls';
  const total = (k: string) => (values.get(k) ?? []).reduce((a, b) => a + b, 0);
  return (
    <figure class="card" data-testid="usage-chart">
      <svg
        viewBox={`0 0 ${w} ${h}`}
        class="chart"
        role="img"
        aria-label={`${label} per ${series.bucketMs >= 86_400_000 ? 'day' : 'hour'} by ${series.by}, from ${time(series.sinceMs)} to ${time(series.untilMs)}`}
      >
        <line x1={pad} y1={h - pad} x2={w - pad} y2={h - pad} class="axis" />
        <line x1={pad} y1={pad} x2={pad} y2={h - pad} class="axis" />
        <text x={pad - 4} y={pad} text-anchor="end" class="tick">
          {max >= 10 ? Math.round(max).toLocaleString() : max.toPrecision(2)}
        </text>
        <text x={pad - 4} y={h - pad} text-anchor="end" class="tick">
          0
        </text>
        <text x={pad} y={h - pad + 16} class="tick">
          {time(first)}
        </text>
        <text x={w - pad} y={h - pad + 16} text-anchor="end" class="tick">
          {time(series.untilMs)}
        </text>
        {series.keys.map((k, n) => (
          <polyline
            key={k}
            fill="none"
            stroke={PALETTE[n % PALETTE.length]}
            stroke-width="2"
            points={(values.get(k) ?? []).map((v, i) => `${x(i)},${y(v)}`).join(' ')}
          />
        ))}
      </svg>
      <figcaption>
        <ul class="legend">
          {series.keys.map((k, n) => (
            <li key={k} data-testid="series-key">
              <span class="swatch" style={{ background: PALETTE[n % PALETTE.length] }} aria-hidden="true" />
              {k}: {total(k).toLocaleString(undefined, { maximumFractionDigits: 4 })} {label}
            </li>
          ))}
        </ul>
      </figcaption>
    </figure>
  );
}
