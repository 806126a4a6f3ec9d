import { useState } from 'preact/hooks';
import { type Access, api, ok } from '../api';
import { Act, Pager, Show, short, time, useLoad } from '../components';

/** The active graph's nodes and their state; operators pause and resume them. */
export function Agents({ access }: { access: Access }) {
  const agents = useLoad(() => ok(api.GET('/api/v1/agents')), []);
  return (
    <section aria-labelledby="agents-title">
      <h1 id="agents-title">Agents</h1>
      <Show loaded={agents}>
        {(list) => (
          <div class="scroll" tabIndex={0}>
            <table>
              <thead>
                <tr>
                  <th scope="col">Node</th>
                  <th scope="col">Plugin</th>
                  <th scope="col">State</th>
                  <th scope="col">Grants</th>
                  <th scope="col">Peers</th>
                  {access.acts && <th scope="col">Act</th>}
                </tr>
              </thead>
              <tbody>
                {list.map((a) => (
                  <tr key={a.name} data-agent={a.name}>
                    <td>{a.name}</td>
                    <td>
                      {a.plugin} {a.pluginVersion} <span class="muted">{short(a.pluginHash)}</span>
                    </td>
                    <td data-testid="agent-state">
                      {a.state}
                      {a.pausedFor ? ` (${a.pausedFor})` : ''}
                    </td>
                    <td>{a.grants.join(', ') || '—'}</td>
                    <td>{a.peers.join(', ') || '—'}</td>
                    {access.acts && (
                      <td>
                        {a.state === 'paused' ? (
                          <Act
                            label={`Resume ${a.name}`}
                            testId="resume"
                            busy="Resuming…"
                            run={async () => {
                              await ok(api.POST('/api/v1/agents/{name}/resume', { params: { path: { name: a.name } } }));
                              agents.reload();
                            }}
                          />
                        ) : (
                          <Act
                            label={`Pause ${a.name}`}
                            testId="pause"
                            busy="Pausing…"
                            run={async () => {
                              await ok(api.POST('/api/v1/agents/{name}/pause', { params: { path: { name: a.name } } }));
                              agents.reload();
                            }}
                          />
                        )}
                      </td>
                    )}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </Show>
      <Instances access={access} />
    </section>
  );
}

const PAGE = 20;

/** The project's agent instances, a page at a time, with their lifecycle acts. */
function Instances({ access }: { access: Access }) {
  const project = access.who.project ?? 'default';
  const [offset, setOffset] = useState(0);
  const list = useLoad(
    () =>
      ok(
        api.GET('/api/v1/projects/{project}/agents', {
          params: { path: { project }, query: { limit: PAGE, offset } },
        }),
      ),
    [project, offset],
  );
  const act = (id: string, what: 'pause' | 'resume') => async () => {
    const path = { project, id };
    const v =
      what === 'pause'
        ? await ok(api.POST('/api/v1/projects/{project}/agents/{id}/pause', { params: { path } }))
        : await ok(api.POST('/api/v1/projects/{project}/agents/{id}/resume', { params: { path } }));
    list.reload();
    return `${v.name} is ${v.status}`;
  };
  return (
    <>
      <h2>Agent instances of project {project}</h2>
      <Show loaded={list}>
        {(page) =>
          page.items.length === 0 ? (
            <p class="muted">No agent instances.</p>
          ) : (
            <>
              <div class="scroll" tabIndex={0}>
                <table>
                  <thead>
                    <tr>
                      <th scope="col">Instance</th>
                      <th scope="col">Plugin</th>
                      <th scope="col">Status</th>
                      <th scope="col">Tasks</th>
                      <th scope="col">Tokens</th>
                      <th scope="col">Updated</th>
                      {access.acts && <th scope="col">Act</th>}
                    </tr>
                  </thead>
                  <tbody>
                    {page.items.map((i) => (
                      <tr key={i.id}>
                        <td>
                          {i.name}
                          <div class="muted">
                            {i.id} · thread <a href={`#/threads/${encodeURIComponent(i.threadId)}`}>{i.threadId}</a>
                          </div>
                        </td>
                        <td>{i.plugin}</td>
                        <td>{i.status}</td>
                        <td>{i.tasksCompleted}</td>
                        <td>{i.tokensUsed}</td>
                        <td>{time(i.updatedMs)}</td>
                        {access.acts && (
                          <td>
                            {i.status === 'paused' ? (
                              <Act label="Resume" busy="Resuming…" run={act(i.id, 'resume')} />
                            ) : i.status !== 'terminated' ? (
                              <Act label="Pause" busy="Pausing…" run={act(i.id, 'pause')} />
                            ) : null}
                            {i.status !== 'terminated' && (
                              <Act
                                label="Terminate"
                                kind="danger"
                                busy="Terminating…"
                                confirm={`Terminate agent ${i.name}? It cannot be resumed.`}
                                run={async () => {
                                  await ok(
                                    api.DELETE('/api/v1/projects/{project}/agents/{id}', {
                                      params: { path: { project, id: i.id } },
                                    }),
                                  );
                                  list.reload();
                                  return `${i.name} terminated`;
                                }}
                              />
                            )}
                          </td>
                        )}
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
              <Pager total={page.total} limit={page.limit} offset={page.offset} onPage={setOffset} />
            </>
          )
        }
      </Show>
    </>
  );
}
