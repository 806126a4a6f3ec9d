// The weft operators' dashboard: sign in with an API key, then the views.
// Routing is by the URL's fragment (`#/threads/ID`), so the host serves
// one page.

import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import './style.css';
import { Access, api, currentKey, message, ok, setKey } from './api';
import { finishSignIn, isReturn, type OidcSignIn, startSignIn } from './oidc';
import { Agents } from './views/Agents';
import { Chat } from './views/Chat';
import { Events } from './views/Events';
import { GraphView } from './views/Graph';
import { Keys } from './views/Keys';
import { Overview } from './views/Overview';
import { Plugins } from './views/Plugins';
import { Thread, Threads } from './views/Threads';
import { Usage } from './views/Usage';

const VIEWS: { path: string; label: string; admin?: boolean }[] = [
  { path: 'overview', label: 'Overview' },
  { path: 'threads', label: 'Threads' },
  { path: 'chat', label: 'Chat' },
  { path: 'graph', label: 'Graph' },
  { path: 'events', label: 'Events' },
  { path: 'usage', label: 'Usage' },
  { path: 'plugins', label: 'Plugins' },
  { path: 'agents', label: 'Agents' },
  { path: 'keys', label: 'Keys', admin: true },
];

function useRoute(): string[] {
  const parse = () =>
    location.hash
      .replace(/^#\/?/, '')
      .split('/')
      .filter(Boolean)
      .map(decodeURIComponent);
  const [route, setRoute] = useState(parse);
  useEffect(() => {
    const on = () => setRoute(parse());
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return route;
}

/** The issuer's host name, or the issuer as given when it is not a URL. */
function providerName(issuer: string): string {
  try {
    return new URL(issuer).host || issuer;
  } catch {
    return issuer;
  }
}

function SignIn({ onSignedIn, error }: { onSignedIn: (a: Access) => void; error?: string }) {
  const [value, setValue] = useState('');
  const [state, setState] = useState<{ busy: boolean; error?: string }>({ busy: false, error });
  const [oidc, setOidc] = useState<OidcSignIn | null>(null);
  useEffect(() => {
    ok(api.GET('/api/v1/auth')).then(
      (m) => setOidc(m.oidc ?? null),
      () => setOidc(null),
    );
  }, []);
  const provider = async () => {
    if (!oidc) return;
    setState({ busy: true });
    try {
      await startSignIn(oidc);
    } catch (err) {
      setState({ busy: false, error: message(err) });
    }
  };
  const submit = async (e: Event) => {
    e.preventDefault();
    setState({ busy: true });
    setKey(value.trim());
    try {
      const who = await ok(api.GET('/api/v1/whoami'));
      onSignedIn(new Access(who));
    } catch (err) {
      setKey(null);
      setState({ busy: false, error: message(err) });
    }
  };
  return (
    <main class="signin">
      <h1>weft dashboard</h1>
      <form onSubmit={submit}>
        <label for="key">API key</label>
        <input
          id="key"
          type="password"
          autocomplete="off"
          value={value}
          onInput={(e) => setValue((e.target as HTMLInputElement).value)}
          placeholder="weft_…"
          required
        />
        <button type="submit" disabled={state.busy}>
          {state.busy ? 'Signing in…' : 'Sign in'}
        </button>
        {state.error && (
          <p class="error" role="alert">
            {state.error}
          </p>
        )}
      </form>
      {oidc && (
        <p>
          <button type="button" onClick={provider} disabled={state.busy} data-testid="oidc-sign-in">
            Sign in with {providerName(oidc.issuer)}
          </button>
        </p>
      )}
      <p class="muted">
        The key (or the provider's token) is kept in this tab's session storage only. <code>weft serve</code> prints the first admin key when it
        creates one; admins create more under Keys.
      </p>
    </main>
  );
}

function App() {
  const [access, setAccess] = useState<Access | null>(null);
  const [checking, setChecking] = useState(!!currentKey() || isReturn());
  const [expired, setExpired] = useState<string | undefined>();
  const route = useRoute();

  useEffect(() => {
    if (isReturn()) {
      finishSignIn()
        .then((token) => {
          setKey(token);
          return ok(api.GET('/api/v1/whoami'));
        })
        .then(
          (who) => {
            setAccess(new Access(who));
            setChecking(false);
          },
          (e) => {
            setKey(null);
            setExpired(message(e));
            setChecking(false);
          },
        );
      return;
    }
    if (!currentKey()) return;
    ok(api.GET('/api/v1/whoami')).then(
      (who) => {
        setAccess(new Access(who));
        setChecking(false);
      },
      (e) => {
        setKey(null);
        setExpired(message(e));
        setChecking(false);
      },
    );
  }, []);

  if (checking) return <p class="muted">Checking the key…</p>;
  if (!access) return <SignIn onSignedIn={setAccess} error={expired} />;

  const [view = 'overview', id] = route;
  const signOut = () => {
    setKey(null);
    setAccess(null);
    location.hash = '';
  };
  let body;
  switch (view) {
    case 'threads':
      body = id ? <Thread key={id} id={id} access={access} /> : <Threads />;
      break;
    case 'chat':
      body = <Chat access={access} />;
      break;
    case 'graph':
      body = <GraphView access={access} />;
      break;
    case 'events':
      body = <Events />;
      break;
    case 'usage':
      body = <Usage access={access} />;
      break;
    case 'plugins':
      body = <Plugins access={access} />;
      break;
    case 'agents':
      body = <Agents access={access} />;
      break;
    case 'keys':
      body = <Keys access={access} />;
      break;
    default:
      body = <Overview />;
  }
  return (
    <div class="shell">
      <header>
        <a class="brand" href="#/overview">
          weft
        </a>
        <nav aria-label="views">
          <ul>
            {VIEWS.filter((v) => !v.admin || access.managesKeys).map((v) => (
              <li key={v.path}>
                <a href={`#/${v.path}`} aria-current={v.path === view ? 'page' : undefined}>
                  {v.label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <div class="who">
          <span data-testid="who">
            {access.who.role}
            {access.who.project ? ` · ${access.who.project}` : ''}
          </span>
          <button type="button" onClick={signOut}>
            Sign out
          </button>
        </div>
      </header>
      <main>{body}</main>
    </div>
  );
}

render(<App />, document.getElementById('app') as HTMLElement);
