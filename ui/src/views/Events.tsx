import { useEffect, useRef, useState } from 'preact/hooks';
import { socketUrl } from '../api';

interface Item {
  id?: number;
  type: string;
  event?: { thread?: string; node?: string | null; data?: unknown };
  missed?: number;
}

const KEEP = 500;

/** The live event stream; pausing holds new events back without losing them. */
export function Events() {
  const [shown, setShown] = useState<Item[]>([]);
  const [held, setHeld] = useState<Item[]>([]);
  const [paused, setPaused] = useState(false);
  const [type, setType] = useState('');
  const [node, setNode] = useState('');
  const [state, setState] = useState('connecting');
  const pausedRef = useRef(false);
  const last = useRef<number | undefined>(undefined);

  useEffect(() => {
    const ws = new WebSocket(socketUrl('/api/v1/ws/events', { lastEventId: last.current?.toString() }));
    ws.onopen = () => setState('live');
    ws.onclose = () => setState('disconnected');
    ws.onmessage = (e) => {
      let item: Item;
      try {
        item = JSON.parse(String(e.data));
      } catch {
        return;
      }
      if (typeof item.id === 'number') last.current = item.id;
      if (pausedRef.current) setHeld((h) => [...h, item]);
      else setShown((s) => [item, ...s].slice(0, KEEP));
    };
    return () => ws.close();
  }, []);

  const toggle = () => {
    if (paused) {
      setShown((s) => [...[...held].reverse(), ...s].slice(0, KEEP));
      setHeld([]);
    }
    pausedRef.current = !paused;
    setPaused(!paused);
  };
  const visible = shown.filter((i) => (!type || i.type === type) && (!node || i.event?.node === node));
  return (
    <section aria-labelledby="events-title">
      <h1 id="events-title">Live events</h1>
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <label>
          Type
          <input type="text" value={type} placeholder="any" onInput={(e) => setType((e.target as HTMLInputElement).value.trim())} />
        </label>
        <label>
          Node
          <input type="text" value={node} placeholder="any" onInput={(e) => setNode((e.target as HTMLInputElement).value.trim())} />
        </label>
        <button type="button" onClick={toggle}>
          {paused ? `Resume (${held.length} held)` : 'Pause'}
        </button>
        <span class="muted" role="status">
          {state}
        </span>
      </form>
      <ol class="events">
        {visible.map((i, n) => (
          <li key={i.id ?? `x${n}`}>
            <span class="kind">{i.type}</span> {i.id !== undefined ? `#${i.id} ` : ''}
            {i.event?.thread ? `thread ${i.event.thread} ` : ''}
            {i.event?.node ? `node ${i.event.node} ` : ''}
            {i.missed ? `${i.missed} events missed` : ''}
            {i.event?.data !== undefined && <code class="data">{JSON.stringify(i.event.data).slice(0, 300)}</code>}
          </li>
        ))}
      </ol>
      {visible.length === 0 && <p class="muted">No events yet.</p>}
    </section>
  );
}
