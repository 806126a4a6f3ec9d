import { useState } from 'preact/hooks';
import { type Access, api, ok } from '../api';
import { Act, Show, useLoad } from '../components';
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
  const [raise, setRaise] = useState('1000');
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
      <h2>Thread budgets</h2>
      {access.acts && (
        <label>
          Raise by
          <input type="number" min="1" value={raise} onInput={(e) => setRaise((e.target as HTMLInputElement).value)} /> tokens
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
                    {access.acts && <th scope="col">Raise</th>}
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
                          <Act
                            label="Raise"
                            run={async () => {
                              const v = await ok(
                                api.PUT('/api/v1/usage/threads/{id}/budget', {
                                  params: { path: { id: b.threadId } },
                                  body: { raise: Number(raise) },
                                }),
                              );
                              budgets.reload();
                              return `Now ${v.limit}`;
                            }}
                          />
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
