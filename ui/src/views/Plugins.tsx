import { useState } from 'preact/hooks';
import { type Access, api, ok } from '../api';
import { Act, Show, short, useLoad } from '../components';

export function Plugins({ access }: { access: Access }) {
  const plugins = useLoad(() => ok(api.GET('/api/v1/plugins')), []);
  const [files, setFiles] = useState<Record<string, File | undefined>>({});
  return (
    <section aria-labelledby="plugins-title">
      <h1 id="plugins-title">Plugins</h1>
      <Show loaded={plugins}>
        {(ps) => (
          <div class="scroll" tabIndex={0}>
            <table>
              <thead>
                <tr>
                  <th scope="col">Plugin</th>
                  <th scope="col">Version</th>
                  <th scope="col">Contract</th>
                  <th scope="col">Hash</th>
                  <th scope="col">Size</th>
                  <th scope="col">Capabilities</th>
                  {access.changesHost && <th scope="col">Change</th>}
                </tr>
              </thead>
              <tbody>
                {ps.map((p) => (
                  <tr key={p.name} data-plugin={p.name}>
                    <td>
                      {p.name}
                      <div class="muted">{p.description}</div>
                    </td>
                    <td>{p.version}</td>
                    <td>{p.contract}</td>
                    <td>
                      <code data-testid="plugin-hash" title={p.hash}>
                        {short(p.hash)}
                      </code>
                    </td>
                    <td>{(p.size / 1024).toFixed(0)} KiB</td>
                    <td>{p.capabilities.join(', ') || '—'}</td>
                    {access.changesHost && (
                      <td class="stack">
                        <label>
                          New version of {p.name}
                          <input
                            type="file"
                            accept=".wasm,application/wasm"
                            data-testid="plugin-file"
                            data-mutates=""
                            onChange={(e) => {
                              const file = (e.target as HTMLInputElement).files?.[0];
                              setFiles((f) => ({ ...f, [p.name]: file }));
                            }}
                          />
                        </label>
                        <Act
                          label="Upload"
                          testId="plugin-upload"
                          busy="Uploading and checking…"
                          run={async () => {
                            const file = files[p.name];
                            if (!file) throw new Error('Choose a component file first.');
                            const swap = await ok(
                              api.PUT('/api/v1/plugins/{name}', {
                                params: { path: { name: p.name } },
                                body: file as unknown as number[],
                                bodySerializer: (b: unknown) => b as File,
                                headers: { 'Content-Type': 'application/wasm' },
                              }),
                            );
                            plugins.reload();
                            return swap.unchanged
                              ? 'The same version: nothing changed'
                              : `Now ${short(swap.to)} (was ${short(swap.from)}), in ${swap.graphs.join(', ')}`;
                          }}
                        />
                        <Act
                          label="Reload from disk"
                          busy="Reloading…"
                          run={async () => {
                            const swap = await ok(
                              api.POST('/api/v1/plugins/{name}/reload', { params: { path: { name: p.name } } }),
                            );
                            plugins.reload();
                            return swap.unchanged ? 'Unchanged on disk' : `Now ${short(swap.to)}`;
                          }}
                        />
                      </td>
                    )}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </Show>
    </section>
  );
}
