import { useEffect, useState } from 'preact/hooks';
import { type Access, type Schemas, api, ok, socketUrl } from '../api';
import { Act, ErrorBox, Pager, Show, short, time, useLoad } from '../components';

const VERSION_PAGE = 10;

interface Elements {
  elements: {
    nodes: { data: { id: string; label: string; plugin: string } }[];
    edges: { data: { id: string; source: string; target: string } }[];
  };
}

/** Columns by distance from the entry (breadth first), unreached nodes last. */
function layout(g: Elements, entry: string): Map<string, { x: number; y: number }> {
  const nodes = g.elements.nodes.map((n) => n.data.id);
  const next = new Map<string, string[]>(nodes.map((n) => [n, []]));
  for (const e of g.elements.edges) next.get(e.data.source)?.push(e.data.target);
  const depth = new Map<string, number>();
  const queue = nodes.includes(entry) ? [entry] : nodes.slice(0, 1);
  if (queue[0]) depth.set(queue[0], 0);
  while (queue.length) {
    const n = queue.shift() as string;
    for (const m of next.get(n) ?? []) {
      if (!depth.has(m)) {
        depth.set(m, (depth.get(n) ?? 0) + 1);
        queue.push(m);
      }
    }
  }
  const maxDepth = Math.max(0, ...depth.values());
  for (const n of nodes) if (!depth.has(n)) depth.set(n, maxDepth + 1);
  const columns = new Map<number, string[]>();
  for (const n of nodes) columns.set(depth.get(n) as number, [...(columns.get(depth.get(n) as number) ?? []), n]);
  const at = new Map<string, { x: number; y: number }>();
  for (const [d, col] of columns) col.forEach((n, i) => at.set(n, { x: 90 + d * 170, y: 50 + i * 80 }));
  return at;
}

export function GraphView({ access }: { access: Access }) {
  const [name, setName] = useState<string | null>(null);
  const graphs = useLoad(() => ok(api.GET('/api/v1/graphs')), []);
  const detail = useLoad(
    () =>
      name
        ? ok(api.GET('/api/v1/graphs/{name}', { params: { path: { name } } }))
        : ok(api.GET('/api/v1/graphs/active')),
    [name],
  );
  const [live, setLive] = useState<string | null>(null);

  // The node running now, from the event stream.
  useEffect(() => {
    const ws = new WebSocket(socketUrl('/api/v1/ws/events'));
    ws.onmessage = (e) => {
      try {
        const m = JSON.parse(String(e.data)) as { type?: string; event?: { node?: string | null } };
        if (m.type === 'frame_trace') setLive(null);
        else if (m.event?.node) setLive(m.event.node);
      } catch {
        /* not an event */
      }
    };
    return () => ws.close();
  }, []);

  return (
    <section aria-labelledby="graph-title">
      <h1 id="graph-title">Graph</h1>
      <Show loaded={graphs}>
        {(gs) => (
          <div class="scroll" tabIndex={0}>
            <table>
              <thead>
                <tr>
                  <th scope="col">Graph</th>
                  <th scope="col">Version</th>
                  <th scope="col">Hash</th>
                  <th scope="col">Nodes</th>
                  <th scope="col">Active</th>
                </tr>
              </thead>
              <tbody>
                {gs.map((g) => (
                  <tr key={g.name}>
                    <td>
                      <button type="button" class="link" onClick={() => setName(g.name)}>
                        {g.name}
                      </button>
                    </td>
                    <td>{g.version ?? g.versionId}</td>
                    <td>{short(g.hash)}</td>
                    <td>{g.nodes.length}</td>
                    <td>
                      {g.active ? (
                        'active'
                      ) : access.changesHost ? (
                        <Act
                          label="Make active"
                          busy="Switching…"
                          run={async () => {
                            await ok(api.PUT('/api/v1/graphs/active', { body: { name: g.name } }));
                            graphs.reload();
                            detail.reload();
                            return `New threads now run ${g.name}`;
                          }}
                        />
                      ) : (
                        'no'
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </Show>
      <ErrorBox error={detail.error} />
      {detail.data && <Drawing detail={detail.data as unknown as { name: string; entry: string; cytoscape: Elements }} live={live} />}
      {detail.data && <Versions key={detail.data.name} name={detail.data.name} />}
    </section>
  );
}

/** What changed from the version before, in words. */
function changeSummary(c: Schemas['VersionChangesView'] | null | undefined): string {
  if (!c) return 'first version';
  const parts = [
    c.added.length ? `added ${c.added.join(', ')}` : '',
    c.removed.length ? `removed ${c.removed.join(', ')}` : '',
    c.changed.length ? `changed ${c.changed.join(', ')}` : '',
    c.plugins.length ? `new plugin build on ${c.plugins.join(', ')}` : '',
    c.settings.length ? `graph settings ${c.settings.join(', ')}` : '',
  ].filter(Boolean);
  return parts.length ? parts.join('; ') : 'comments or layout only';
}

/** A graph's versions, newest first, each with what changed; a row opens its diff. */
function Versions({ name }: { name: string }) {
  const [offset, setOffset] = useState(0);
  const [open, setOpen] = useState<string | null>(null);
  const versions = useLoad(
    () =>
      ok(
        api.GET('/api/v1/graphs/{name}/versions', {
          params: { path: { name }, query: { limit: VERSION_PAGE, offset } },
        }),
      ),
    [name, offset],
  );
  return (
    <section aria-labelledby="versions-title">
      <h2 id="versions-title">Versions of {name}</h2>
      <Show loaded={versions}>
        {(page) => (
          <>
            <div class="scroll" tabIndex={0}>
              <table data-testid="graph-versions">
                <thead>
                  <tr>
                    <th scope="col">Version</th>
                    <th scope="col">Kept</th>
                    <th scope="col">What changed</th>
                    <th scope="col">Serving</th>
                  </tr>
                </thead>
                <tbody>
                  {page.items.map((v) => (
                    <tr key={v.versionId} data-testid="graph-version">
                      <td>
                        <button
                          type="button"
                          class="link"
                          aria-expanded={open === v.versionId}
                          onClick={() => setOpen(open === v.versionId ? null : v.versionId)}
                        >
                          {short(v.versionId)}
                        </button>
                      </td>
                      <td>{time(v.createdMs)}</td>
                      <td data-testid="version-changes">{changeSummary(v.changes)}</td>
                      <td>{v.served ? 'now' : ''}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
            <Pager total={page.total} limit={page.limit} offset={page.offset} onPage={setOffset} />
          </>
        )}
      </Show>
      {open && <VersionDiff key={open} name={name} id={open} />}
    </section>
  );
}

function VersionDiff({ name, id }: { name: string; id: string }) {
  const version = useLoad(
    () => ok(api.GET('/api/v1/graphs/{name}/versions/{id}', { params: { path: { name, id } } })),
    [name, id],
  );
  return (
    <Show loaded={version}>
      {(v) => (
        <article class="card" data-testid="version-diff">
          <h3>
            Version {short(v.versionId)}: {changeSummary(v.changes)}
          </h3>
          {v.diff ? (
            <pre class="diff" tabIndex={0}>
              {v.diff.split('\n').map((line, i) => (
                <span
                  key={i}
                  class={line.startsWith('+') && !line.startsWith('+++') ? 'add' : line.startsWith('-') && !line.startsWith('---') ? 'del' : undefined}
                >
                  {line}
                  {'\n'}
                </span>
              ))}
            </pre>
          ) : (
            <>
              <p class="muted">{v.diff === '' ? 'The file did not change; its text:' : 'The first version; its file:'}</p>
              <pre class="diff" tabIndex={0}>
                {v.source}
              </pre>
            </>
          )}
        </article>
      )}
    </Show>
  );
}

function Drawing({ detail, live }: { detail: { name: string; entry: string; cytoscape: Elements }; live: string | null }) {
  const g = detail.cytoscape;
  const at = layout(g, detail.entry);
  const width = Math.max(...[...at.values()].map((p) => p.x)) + 100;
  const height = Math.max(...[...at.values()].map((p) => p.y)) + 50;
  return (
    <figure>
      <figcaption>
        {detail.name}: {g.elements.nodes.length} nodes, {g.elements.edges.length} edges (entry {detail.entry})
        {live ? `; running now: ${live}` : ''}
      </figcaption>
      <svg viewBox={`0 0 ${width} ${height}`} class="graph" role="img" aria-label={`graph ${detail.name}`}>
        <defs>
          <marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" orient="auto-start-reverse">
            <path d="M 0 0 L 10 5 L 0 10 z" class="arrowhead" />
          </marker>
        </defs>
        {g.elements.edges.map((e) => {
          const a = at.get(e.data.source);
          const b = at.get(e.data.target);
          if (!a || !b) return null;
          return <line key={e.data.id} x1={a.x + 60} y1={a.y} x2={b.x - 60} y2={b.y} class="edge" marker-end="url(#arrow)" />;
        })}
        {g.elements.nodes.map((n) => {
          const p = at.get(n.data.id);
          if (!p) return null;
          return (
            <g key={n.data.id} class={`node${live === n.data.id ? ' live' : ''}`} data-node={n.data.id}>
              <rect x={p.x - 60} y={p.y - 22} width="120" height="44" rx="8" />
              <text x={p.x} y={p.y - 2} text-anchor="middle">
                {n.data.label}
              </text>
              <text x={p.x} y={p.y + 14} text-anchor="middle" class="plugin">
                {n.data.plugin}
              </text>
            </g>
          );
        })}
      </svg>
    </figure>
  );
}
