// The facts node, written in JavaScript: formats the interpreter's key
// facts for the UI.
//
// The interpreter sends its `ui` actions here instead of to the ui node
// (its config `ui: facts`). Every `emit_display` with `items` (the key
// facts) is rewritten before it goes on to the ui node:
//
// - facts are trimmed, empty ones dropped and repeats removed;
// - long numbers get thousands separators (`12345.5` -> `12,345.5`, or
//   `12.345,5` for German);
// - when every fact reads `label: value`, the display becomes a two-column
//   table (`columns: ["fact", "value"]`);
// - at most `max_items` facts are shown, then `… and N more`.
//
// Other actions pass through unchanged. The formatted facts are kept in
// thread memory (`facts.last`) for later turns, and the node emits an
// `updated` HUD event with their count.
//
// Config: {"ui": "ui", "max_items": 8, "language": "en"}.
//
// Built with componentize-js against `wit/` (`weft plugin build` or
// `cargo xtask build-plugins`); one ES module, no bundler.

import { emit, progress } from 'weft:node/hud@0.4.0';
import { get, set } from 'weft:node/memory@0.4.0';
import { write } from 'weft:node/log@0.4.0';

const VERSION = '0.1.0';
const LAST_KEY = 'facts.last';
const UI_TOOLS = [
  'create_machine', 'add_state', 'reset_machine', 'destroy_machine',
  'transition_machine', 'set_state', 'emit_display',
];
const UI_ACTIONS_SCHEMA = {
  type: 'object',
  properties: {
    actions: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          tool: { type: 'string', enum: UI_TOOLS },
          args: { type: 'object' },
        },
        required: ['tool', 'args'],
        additionalProperties: false,
      },
    },
  },
  required: ['actions'],
  additionalProperties: false,
};

// A node error for the host: componentize-js maps a thrown variant value
// (not an `Error` object) to the `err` case of `tick`'s result.
function invalidInput(text) {
  return { tag: 'invalid-input', val: text };
}

function loadConfig(text) {
  const config = { ui: 'ui', max_items: 8, language: 'en' };
  let given;
  try {
    given = JSON.parse(text || '{}');
  } catch (e) {
    throw invalidInput(`bad facts config: not JSON (${e.message})`);
  }
  for (const key of Object.keys(given)) {
    if (!(key in config)) throw invalidInput(`bad facts config: unknown key \`${key}\``);
  }
  Object.assign(config, given);
  if (typeof config.ui !== 'string' || config.ui === '') {
    throw invalidInput('bad facts config: `ui` must name the ui node');
  }
  if (!Number.isInteger(config.max_items) || config.max_items < 1) {
    throw invalidInput('bad facts config: `max_items` must be a positive integer');
  }
  return config;
}

// `12345.5` -> `12,345.5` (en) or `12.345,5` (de); short numbers, years
// and ids such as #1042 stay as they are.
export function groupNumbers(text, language) {
  const [thousands, decimal] = language === 'de' ? ['.', ','] : [',', '.'];
  return text.replace(/(^|[^\w#.,])(\d{5,})(?:\.(\d+))?(?![\w.,])/g, (match, lead, whole, frac) => {
    const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, thousands);
    return lead + grouped + (frac === undefined ? '' : decimal + frac);
  });
}

export function formatFacts(items, config) {
  const seen = new Set();
  const facts = [];
  for (const item of items) {
    const fact = groupNumbers(String(item).trim(), config.language);
    if (fact === '' || seen.has(fact.toLowerCase())) continue;
    seen.add(fact.toLowerCase());
    facts.push(fact);
  }
  const shown = facts.slice(0, config.max_items);
  const more = facts.length - shown.length;
  const pairs = shown.map((fact) => fact.match(/^([^:]{1,60}):\s+(.+)$/));
  const display = {};
  if (shown.length > 1 && pairs.every((p) => p !== null)) {
    display.columns = ['fact', 'value'];
    display.rows = pairs.map((p) => [p[1], p[2]]);
    if (more > 0) display.rows.push(['…', `and ${more} more`]);
  } else {
    display.items = more > 0 ? [...shown, `… and ${more} more`] : shown;
  }
  return { facts, display };
}

function formatActions(body, config) {
  let actions;
  try {
    actions = JSON.parse(body).actions;
  } catch (e) {
    throw invalidInput(`a ui message that is not JSON: ${e.message}`);
  }
  const kept = [];
  for (const action of actions) {
    if (action.tool !== 'emit_display' || !Array.isArray(action.args.items)) {
      kept.push(action);
      continue;
    }
    const { facts, display } = formatFacts(action.args.items, config);
    const { items, ...rest } = action.args;
    kept.push({ tool: 'emit_display', args: { ...rest, ...display } });
    set('thread', LAST_KEY, JSON.stringify(facts));
    emit('updated', JSON.stringify({ facts: facts.length, shown: Math.min(facts.length, config.max_items) }));
  }
  return kept;
}

export const plugin = {
  describe() {
    return {
      name: 'facts',
      version: VERSION,
      description: "Formats the interpreter's key facts for the UI (JavaScript)",
      inputSchema: JSON.stringify(UI_ACTIONS_SCHEMA),
      outputSchema: JSON.stringify(UI_ACTIONS_SCHEMA),
      capabilities: ['memory', 'hud', 'log'],
    };
  },

  tick(ctx, inbox) {
    const config = loadConfig(ctx.config);
    const messages = [];
    for (const message of inbox) {
      if (message.kind !== 'ui') {
        write('warn', `ignoring a \`${message.kind}\` message from ${message.from}`);
        continue;
      }
      progress('formatting the facts…');
      const actions = formatActions(message.body, config);
      messages.push({ to: config.ui, kind: 'ui', body: JSON.stringify({ actions }) });
    }
    return { messages, reply: undefined, done: false, interrupt: undefined };
  },
};
