import { useEffect, useRef, useState } from 'preact/hooks';
import { type Access, socketUrl } from '../api';

interface Line {
  who: 'you' | 'weft' | 'progress' | 'error' | 'note';
  text: string;
  node?: string;
}

interface Control {
  label: string;
  action: string;
  machine?: string;
}

/** Chat with the active graph over the chat socket (`/api/v1/ws`). */
export function Chat({ access }: { access: Access }) {
  const [lines, setLines] = useState<Line[]>([]);
  const [draft, setDraft] = useState('');
  const [thread, setThread] = useState<string | null>(null);
  const [state, setState] = useState<'connecting' | 'open' | 'closed'>('connecting');
  const [running, setRunning] = useState(false);
  const [controls, setControls] = useState<Control[]>([]);
  const socket = useRef<WebSocket | null>(null);
  const threadRef = useRef<string | null>(null);
  // The line of the reply being streamed (-1: none yet).
  const reply = useRef(-1);
  const [attempt, setAttempt] = useState(0);

  useEffect(() => {
    if (!access.acts) return undefined;
    const ws = new WebSocket(socketUrl('/api/v1/ws', { thread: threadRef.current ?? undefined }));
    socket.current = ws;
    setState('connecting');
    ws.onopen = () => setState('open');
    ws.onclose = (e) => {
      setState('closed');
      setRunning(false);
      if (e.code === 4401) add({ who: 'error', text: `The key is no longer valid: ${e.reason}` });
    };
    ws.onerror = () => add({ who: 'error', text: 'The chat socket failed; reconnect to continue the thread.' });
    ws.onmessage = (e) => {
      let m: Record<string, unknown>;
      try {
        m = JSON.parse(String(e.data));
      } catch {
        return;
      }
      switch (m.type) {
        case 'session':
          threadRef.current = String(m.threadId);
          setThread(String(m.threadId));
          break;
        case 'accepted':
          setRunning(true);
          reply.current = -1;
          break;
        case 'delta':
          setLines((ls) => {
            // Deltas join the run's reply line, wherever progress put it.
            const at = reply.current;
            if (at >= 0 && at < ls.length) return ls.map((l, i) => (i === at ? { ...l, text: l.text + String(m.text) } : l));
            reply.current = ls.length;
            return [...ls, { who: 'weft', text: String(m.text) }];
          });
          break;
        case 'progress':
          add({ who: 'progress', text: String(m.text), node: m.node ? String(m.node) : undefined });
          break;
        case 'controls': {
          const s = m.state as { controls?: Control[] } | undefined;
          setControls(Array.isArray(s?.controls) ? s.controls : []);
          break;
        }
        case 'done':
          setRunning(false);
          setLines((ls) => {
            // The reply in full replaces what was streamed of it.
            const text = m.reply == null ? '' : String(m.reply);
            const at = reply.current;
            reply.current = -1;
            let fixed = ls;
            if (text && at >= 0 && at < ls.length) fixed = ls.map((l, i) => (i === at ? { ...l, text } : l));
            else if (text) fixed = [...ls, { who: 'weft', text }];
            return m.status === 'completed' ? fixed : [...fixed, { who: 'note', text: `The run ended ${String(m.status)}.` }];
          });
          break;
        case 'cancelled':
          add({ who: 'note', text: 'The run was told to stop.' });
          break;
        case 'graph':
          add({ who: 'note', text: `The active graph is now ${String(m.graph)}.` });
          break;
        case 'error':
          add({ who: 'error', text: `${String(m.code)}: ${String(m.message)}` });
          break;
        default:
          break;
      }
    };
    return () => ws.close();
  }, [attempt, access.acts]);

  function add(line: Line) {
    setLines((ls) => [...ls, line]);
  }

  function send(payload: object) {
    socket.current?.send(JSON.stringify(payload));
  }

  if (!access.acts) {
    return (
      <section aria-labelledby="chat-title">
        <h1 id="chat-title">Chat</h1>
        <p>Chatting sends messages to the graph, which needs an operator key; this key is a viewer.</p>
      </section>
    );
  }

  return (
    <section aria-labelledby="chat-title" class="chat">
      <h1 id="chat-title">Chat</h1>
      <p class="muted">
        {state === 'open' ? 'Connected' : state === 'connecting' ? 'Connecting…' : 'Disconnected'}
        {thread && (
          <>
            {' '}
            · thread <a href={`#/threads/${encodeURIComponent(thread)}`} data-testid="chat-thread">{thread}</a>
          </>
        )}
        {state === 'closed' && (
          <button type="button" onClick={() => setAttempt((a) => a + 1)}>
            Reconnect
          </button>
        )}
      </p>
      <ol class="transcript" aria-live="polite" data-testid="transcript">
        {lines.map((l, i) => (
          <li key={i} class={l.who} data-testid={`line-${l.who}`}>
            <span class="who">{l.who === 'progress' ? (l.node ?? 'progress') : l.who}</span> {l.text}
          </li>
        ))}
      </ol>
      {controls.length > 0 && (
        <div class="actions" aria-label="controls">
          {controls.map((c) => (
            <button type="button" key={`${c.machine}-${c.action}`} onClick={() => send({ type: 'action', action: c.action })} data-mutates="">
              {c.machine ? `${c.machine}: ` : ''}
              {c.label}
            </button>
          ))}
        </div>
      )}
      <form
        class="composer"
        onSubmit={(e) => {
          e.preventDefault();
          const text = draft.trim();
          if (!text || state !== 'open') return;
          add({ who: 'you', text });
          send({ type: 'message', text });
          setDraft('');
        }}
      >
        <label for="chat-input" class="sr-only">
          Message
        </label>
        <input
          id="chat-input"
          type="text"
          value={draft}
          onInput={(e) => setDraft((e.target as HTMLInputElement).value)}
          placeholder="Ask something"
          autocomplete="off"
        />
        <button type="submit" disabled={state !== 'open'} data-mutates="">
          Send
        </button>
        {running && (
          <button type="button" class="danger" onClick={() => send({ type: 'cancel' })} data-mutates="">
            Cancel
          </button>
        )}
      </form>
    </section>
  );
}
