import { useState } from 'preact/hooks';
import { type Access, api, type FramePage, type FrameRecord, ok } from '../api';
import { Act, ErrorBox, Json, Pager, Show, micros, short, time, useLoad } from '../components';

const STATUSES = [
  'running',
  'completed',
  'killed',
  'preempted',
  'rolled_back',
  'frame_limit',
  'store_failed',
  'interrupted',
  'suspended',
  'budget_exhausted',
  'waiting',
] as const;
type Status = (typeof STATUSES)[number];
const PAGE = 20;
const CHANGED = { hour: 3_600_000, day: 86_400_000, week: 7 * 86_400_000 } as const;
type Changed = keyof typeof CHANGED | '';

export function Threads() {
  const [status, setStatus] = useState<Status | ''>('');
  const [node, setNode] = useState('');
  const [project, setProject] = useState('');
  const [changed, setChanged] = useState<Changed>('');
  const [offset, setOffset] = useState(0);
  const list = useLoad(() => {
    const sinceMs = changed ? Date.now() - CHANGED[changed] : undefined;
    return ok(
      api.GET('/api/v1/threads', {
        params: {
          query: {
            status: status || undefined,
            node: node || undefined,
            project: project || undefined,
            sinceMs,
            limit: PAGE,
            offset,
          },
        },
      }),
    );
  }, [status, node, project, changed, offset]);
  return (
    <section aria-labelledby="threads-title">
      <h1 id="threads-title">Threads and runs</h1>
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <label>
          Status
          <select
            value={status}
            onChange={(e) => {
              setStatus((e.target as HTMLSelectElement).value as Status | '');
              setOffset(0);
            }}
          >
            <option value="">any</option>
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </label>
        <label>
          Node
          <input
            type="text"
            value={node}
            placeholder="any"
            onChange={(e) => {
              setNode((e.target as HTMLInputElement).value.trim());
              setOffset(0);
            }}
          />
        </label>
        <label>
          Project
          <input
            type="text"
            value={project}
            placeholder="any"
            data-testid="filter-project"
            onChange={(e) => {
              setProject((e.target as HTMLInputElement).value.trim());
              setOffset(0);
            }}
          />
        </label>
        <label>
          Changed
          <select
            value={changed}
            data-testid="filter-changed"
            onChange={(e) => {
              setChanged((e.target as HTMLSelectElement).value as Changed);
              setOffset(0);
            }}
          >
            <option value="">any time</option>
            <option value="hour">in the last hour</option>
            <option value="day">in the last day</option>
            <option value="week">in the last week</option>
          </select>
        </label>
        <button type="button" onClick={list.reload}>
          Refresh
        </button>
      </form>
      <Show loaded={list}>
        {(page) => (
          <>
            <div class="scroll" tabIndex={0}>
              <table>
                <caption class="sr-only">Threads, most recently changed first</caption>
                <thead>
                  <tr>
                    <th scope="col">Thread</th>
                    <th scope="col">Project</th>
                    <th scope="col">Status</th>
                    <th scope="col">Runs</th>
                    <th scope="col">Frames</th>
                    <th scope="col">Updated</th>
                  </tr>
                </thead>
                <tbody>
                  {page.items.map((t) => (
                    <tr key={t.id}>
                      <td>
                        <a href={`#/threads/${encodeURIComponent(t.id)}`} data-testid="thread-link">
                          {t.id}
                        </a>
                        {t.forkedFrom ? <span class="muted"> (fork of {t.forkedFrom})</span> : null}
                      </td>
                      <td>{t.project}</td>
                      <td>
                        <span class={`status ${t.status}`}>{t.status}</span>
                      </td>
                      <td>{t.runs}</td>
                      <td>{t.frames}</td>
                      <td>{time(t.updatedMs)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
            {page.items.length === 0 && <p class="muted">No threads match.</p>}
            <Pager total={page.total} limit={page.limit} offset={page.offset} onPage={setOffset} />
          </>
        )}
      </Show>
    </section>
  );
}

const FRAME_PAGE = 25;

export function Thread({ id, access }: { id: string; access: Access }) {
  const [offset, setOffset] = useState(0);
  const [picked, setPicked] = useState<{ frame: number; record: FrameRecord } | null>(null);
  const thread = useLoad(() => ok(api.GET('/api/v1/threads/{id}', { params: { path: { id } } })), [id]);
  const runs = useLoad(() => ok(api.GET('/api/v1/threads/{id}/runs', { params: { path: { id } } })), [id]);
  const frames = useLoad(
    async () =>
      (await ok(
        api.GET('/api/v1/threads/{id}/frames', { params: { path: { id }, query: { limit: FRAME_PAGE, offset } } }),
      )) as unknown as FramePage,
    [id, offset],
  );
  const budget = useLoad(
    async () => (await ok(api.GET('/api/v1/usage/threads'))).find((b) => b.threadId === id),
    [id],
  );
  const [raise, setRaise] = useState('1000');
  const reloadAll = () => {
    thread.reload();
    runs.reload();
    frames.reload();
    budget.reload();
  };
  const nodes = [...new Set((frames.data?.items ?? []).flatMap((f) => f.records.map((r) => r.node)))];
  return (
    <section aria-labelledby="thread-title">
      <p>
        <a href="#/threads">← Threads</a>
      </p>
      <h1 id="thread-title">Thread {id}</h1>
      <Show loaded={thread}>
        {(t) => (
          <dl class="facts">
            <div><dt>Status</dt><dd data-testid="thread-status">{t.status}</dd></div>
            <div><dt>Project</dt><dd>{t.project}</dd></div>
            <div><dt>Graph version</dt><dd>{short(t.graphVersion)}</dd></div>
            <div><dt>Runs / frames</dt><dd>{t.runs} / {t.frames}</dd></div>
            {t.forkedFrom && (
              <div>
                <dt>Forked from</dt>
                <dd>
                  <a href={`#/threads/${encodeURIComponent(t.forkedFrom)}`}>{t.forkedFrom}</a> after frame {t.forkedAfter}
                </dd>
              </div>
            )}
            <div><dt>Created</dt><dd>{time(t.createdMs)}</dd></div>
          </dl>
        )}
      </Show>
      {access.acts && (
        <div class="actions">
          {thread.data?.activeRun && (
            <Act
              label="Kill the run"
              kind="danger"
              busy="Stopping at the next frame…"
              run={async () => {
                const k = await ok(api.POST('/api/v1/threads/{id}/kill', { params: { path: { id } } }));
                reloadAll();
                return `Run ${k.runId} told to stop`;
              }}
            />
          )}
          {(['recorded', 'current'] as const).map((versions) => (
            <Act
              key={versions}
              label={versions === 'recorded' ? 'Replay' : 'Replay on current plugins'}
              testId={`replay-${versions}`}
              busy="Replaying…"
              run={async () => {
                const r = await ok(
                  api.POST('/api/v1/threads/{id}/replay', { params: { path: { id } }, body: { versions } }),
                );
                const counts = `${r.frames} frames, ${r.invocations} invocations, ${r.journalEntries} host calls from the journal`;
                const changed = r.changedPlugins.length
                  ? `; plugins changed on ${r.changedPlugins.map((c) => c.node).join(', ')}`
                  : '';
                if (r.reproduced) return `Reproduced: ${counts}${changed}`;
                const d = r.divergences[0];
                return `Diverged (${r.divergences.length}): frame ${d.seq} node ${d.node}, ${d.what}: recorded ${d.recorded}, replayed ${d.replayed} (${counts}${changed})`;
              }}
            />
          ))}
          <span class="inline-form">
            <label>
              Raise budget by
              <input
                type="number"
                min="1"
                value={raise}
                onInput={(e) => setRaise((e.target as HTMLInputElement).value)}
                data-testid="raise-amount"
              />
              tokens
            </label>
            <Act
              label="Raise budget"
              testId="raise-budget"
              run={async () => {
                const b = await ok(
                  api.PUT('/api/v1/usage/threads/{id}/budget', {
                    params: { path: { id } },
                    body: { raise: Number(raise) },
                  }),
                );
                budget.reload();
                return `Budget now ${b.limit} tokens (${b.used} used)`;
              }}
            />
          </span>
        </div>
      )}
      <ErrorBox error={budget.error} />
      {budget.data && (
        <p data-testid="budget">
          Budget: {budget.data.used} of {budget.data.limit} tokens used ({Math.round(budget.data.percentUsed)}%)
          {budget.data.exhausted ? ', exhausted' : ''}
        </p>
      )}
      <h2>Runs</h2>
      <Show loaded={runs}>
        {(rs) => (
          <div class="scroll" tabIndex={0}>
            <table>
              <thead>
                <tr>
                  <th scope="col">Run</th>
                  <th scope="col">Status</th>
                  <th scope="col">Frames</th>
                  <th scope="col">Started</th>
                  <th scope="col">Took</th>
                  <th scope="col">Reply</th>
                </tr>
              </thead>
              <tbody>
                {rs.map((r) => (
                  <tr key={r.id}>
                    <td>{r.id}</td>
                    <td><span class={`status ${r.status}`}>{r.status}</span></td>
                    <td>{r.frames}</td>
                    <td>{time(r.startedMs)}</td>
                    <td>{r.endedMs ? `${r.endedMs - r.startedMs} ms` : 'running'}</td>
                    <td class="reply">{r.reply ?? '—'}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </Show>
      <h2>Timeline</h2>
      <p class="muted">Frames down, nodes across: each cell is one invocation. Pick one to see its inbox, outputs and host calls.</p>
      <Show loaded={frames}>
        {(page) => (
          <>
            <div class="scroll" tabIndex={0}>
              <table class="timeline" data-testid="timeline">
                <thead>
                  <tr>
                    <th scope="col">Frame</th>
                    {nodes.map((n) => (
                      <th scope="col" key={n}>
                        {n}
                      </th>
                    ))}
                    {access.acts && <th scope="col">Fork</th>}
                  </tr>
                </thead>
                <tbody>
                  {page.items.map((f) => (
                    <tr key={f.frame}>
                      <th scope="row">
                        {f.frame}
                        <span class="muted"> · {f.run.split('.').pop()}</span>
                      </th>
                      {nodes.map((n) => {
                        const r = f.records.find((x) => x.node === n);
                        if (!r) return <td key={n} />;
                        return (
                          <td key={n} class={r.error ? 'failed' : ''}>
                            <button
                              type="button"
                              class="cell"
                              aria-pressed={picked?.frame === f.frame && picked.record.node === n}
                              onClick={() => setPicked({ frame: f.frame, record: r })}
                              data-testid="invocation"
                            >
                              {micros(r.durationUs)} · {r.fuelUsed.toLocaleString()} fuel
                              {r.tokens.calls > 0 && ` · ${r.tokens.prompt + r.tokens.completion} tok`}
                              {r.journal.length > 0 && ` · ${r.journal.length} calls`}
                              {r.error && ` · ${r.error.code}`}
                            </button>
                          </td>
                        );
                      })}
                      {access.acts && (
                        <td>
                          <Act
                            label={`Fork after ${f.frame}`}
                            testId="fork"
                            busy="Forking…"
                            run={async () => {
                              const forked = await ok(
                                api.POST('/api/v1/threads/{id}/fork', {
                                  params: { path: { id } },
                                  body: { after: f.frame },
                                }),
                              );
                              location.hash = `#/threads/${encodeURIComponent(forked.threadId)}`;
                              return `Forked into ${forked.threadId}`;
                            }}
                          />
                        </td>
                      )}
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
            <Pager total={page.total} limit={page.limit} offset={page.offset} onPage={setOffset} />
          </>
        )}
      </Show>
      {picked && <Invocation frame={picked.frame} record={picked.record} />}
    </section>
  );
}

function Invocation({ frame, record: r }: { frame: number; record: FrameRecord }) {
  return (
    <section class="invocation" aria-labelledby="invocation-title">
      <h2 id="invocation-title">
        Frame {frame}, node {r.node}
      </h2>
      <dl class="facts">
        <div><dt>Plugin</dt><dd>{r.plugin} {short(r.pluginHash)}</dd></div>
        <div><dt>Duration</dt><dd>{micros(r.durationUs)} {r.reusedInstance ? '(kept instance)' : <>(instantiation {micros(r.instantiateUs)})</>}</dd></div>
        <div><dt>Fuel</dt><dd>{r.fuelUsed.toLocaleString()}</dd></div>
        <div><dt>Tokens</dt><dd>{r.tokens.prompt} prompt, {r.tokens.completion} completion, {r.tokens.calls} calls</dd></div>
        <div><dt>Done</dt><dd>{r.done ? 'yes' : 'no'}</dd></div>
      </dl>
      {r.error && (
        <p class="error" role="alert">
          {r.error.code}: {r.error.message}
        </p>
      )}
      <h3>Inbox</h3>
      {r.inbox.length === 0 ? (
        <p class="muted">Nothing delivered.</p>
      ) : (
        <ul>
          {r.inbox.map((m) => (
            <li key={m.id}>
              {m.kind} from {m.from} ({m.bytes} bytes)
            </li>
          ))}
        </ul>
      )}
      <h3>Outputs</h3>
      {r.reply && <p>Reply: {r.reply}</p>}
      {r.sent.length === 0 && !r.reply ? (
        <p class="muted">Nothing sent.</p>
      ) : (
        <ul>
          {r.sent.map((m, i) => (
            <li key={i}>
              {m.kind} to {m.to} ({m.bytes} bytes){m.rejected ? `: rejected, ${m.rejected.message}` : ''}
            </li>
          ))}
        </ul>
      )}
      <h3>Host calls</h3>
      {r.journal.length === 0 ? (
        <p class="muted">No host calls.</p>
      ) : (
        <ol class="calls" data-testid="host-calls">
          {r.journal.map((c) => (
            <li key={c.seq}>
              <details>
                <summary>
                  {c.capability}.{c.op}
                </summary>
                <h4>Request</h4>
                <Json value={c.request} />
                <h4>Response</h4>
                <Json value={c.response} />
              </details>
            </li>
          ))}
        </ol>
      )}
      {r.denied.length > 0 && (
        <>
          <h3>Denied calls</h3>
          <p>{r.denied.join(', ')}</p>
        </>
      )}
      <h3>Logs</h3>
      {r.logs.length === 0 ? (
        <p class="muted">No log lines.</p>
      ) : (
        <ul class="logs">
          {r.logs.map((l, i) => (
            <li key={i}>
              <span class={`level ${l.level}`}>{l.level}</span> {l.message}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
