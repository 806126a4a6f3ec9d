import { type Access, api, ok } from '../api';
import { Act, Show, short, useLoad } from '../components';

/** The active graph's nodes and their state; operators pause and resume them. */
export function Agents({ access }: { access: Access }) {
  const agents = useLoad(() => ok(api.GET('/api/v1/agents')), []);
  const instances = useLoad(
    () =>
      ok(
        api.GET('/api/v1/projects/{project}/agents', {
          params: { path: { project: access.who.project ?? 'default' } },
        }),
      ),
    [],
  );
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
      <h2>Agent instances</h2>
      <Show loaded={instances}>
        {(page) => {
          const items = (Array.isArray(page) ? page : (page as { items?: unknown[] }).items ?? []) as {
            id: string;
            state?: string;
            graph?: string;
          }[];
          return items.length === 0 ? (
            <p class="muted">No agent instances in project {access.who.project ?? 'default'}.</p>
          ) : (
            <ul>
              {items.map((i) => (
                <li key={i.id}>
                  {i.id}: {i.state ?? ''} {i.graph ?? ''}
                </li>
              ))}
            </ul>
          );
        }}
      </Show>
    </section>
  );
}
