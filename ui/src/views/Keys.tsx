import { useState } from 'preact/hooks';
import { type Access, api, ok, type Role } from '../api';
import { Act, Show, time, useLoad } from '../components';

/** API keys (admins): create (the secret is shown once), list, revoke. */
export function Keys({ access }: { access: Access }) {
  const keys = useLoad(() => ok(api.GET('/api/v1/keys')), []);
  const [name, setName] = useState('');
  const [role, setRole] = useState<Role>('viewer');
  const [project, setProject] = useState(access.who.project ?? '');
  const [secret, setSecret] = useState<string | null>(null);
  if (!access.managesKeys) {
    return (
      <section aria-labelledby="keys-title">
        <h1 id="keys-title">Keys</h1>
        <p>Managing keys needs an admin key.</p>
      </section>
    );
  }
  return (
    <section aria-labelledby="keys-title">
      <h1 id="keys-title">Keys</h1>
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <label>
          Name
          <input type="text" value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} data-testid="key-name" />
        </label>
        <label>
          Role
          <select value={role} onChange={(e) => setRole((e.target as HTMLSelectElement).value as Role)} data-testid="key-role">
            <option value="viewer">viewer</option>
            <option value="operator">operator</option>
            <option value="admin">admin</option>
          </select>
        </label>
        <label>
          Project
          <input
            type="text"
            value={project}
            placeholder="all projects"
            disabled={!!access.who.project}
            onInput={(e) => setProject((e.target as HTMLInputElement).value.trim())}
          />
        </label>
        <Act
          label="Create key"
          testId="create-key"
          busy="Creating…"
          run={async () => {
            const created = await ok(
              api.POST('/api/v1/keys', { body: { name: name || 'dashboard', role, project: project || null } }),
            );
            setSecret(created.secret);
            keys.reload();
            return `Created ${created.key.id}`;
          }}
        />
      </form>
      {secret && (
        <p class="secret" role="status">
          The new key (shown only now): <code data-testid="key-secret">{secret}</code>
        </p>
      )}
      <Show loaded={keys}>
        {(list) => (
          <div class="scroll" tabIndex={0}>
            <table>
              <thead>
                <tr>
                  <th scope="col">Id</th>
                  <th scope="col">Name</th>
                  <th scope="col">Role</th>
                  <th scope="col">Project</th>
                  <th scope="col">Created</th>
                  <th scope="col">Revoke</th>
                </tr>
              </thead>
              <tbody>
                {list.map((k) => (
                  <tr key={k.id}>
                    <td>{k.id}</td>
                    <td>{k.name}</td>
                    <td>{k.role}</td>
                    <td>{k.project ?? 'all'}</td>
                    <td>{time(k.createdMs)}</td>
                    <td>
                      {k.id === access.who.key ? (
                        'this key'
                      ) : (
                        <Act
                          label="Revoke"
                          kind="danger"
                          confirm={`Revoke key ${k.name} (${k.id})? Clients using it stop working at once.`}
                          run={async () => {
                            await ok(api.DELETE('/api/v1/keys/{id}', { params: { path: { id: k.id } } }));
                            keys.reload();
                          }}
                        />
                      )}
                    </td>
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
