// A JavaScript test guest that misbehaves on purpose, chosen by its config
// {"fault": …}, so the engine's tests can check that a JavaScript node's
// faults are contained exactly like a Rust one's:
//
// - `raise`: a thrown Error object (the instance traps);
// - `fail`: a typed node error (`failed`), thrown as the variant value;
// - `loop`: an endless loop (fuel or the deadline stops it);
// - `malformed`: a body that is not JSON, and a message to a node that is
//   not a peer (the host rejects both);
// - `ask`: asks a person (an interrupt, contract 0.3.0) whether to go on,
//   with the answer schema `{"approve": boolean}`; in the frame after the
//   answer (kind `resume` from the host) it replies with that notice's
//   outcome, as JSON;
// - `count`: adds one to the project's `store` key `counters/visits`
//   (contract 0.3.0) and replies with the new count;
// - anything else: replies `ok` after writing memory and a HUD event.
//
// The host's notices that a message could not be delivered (kind
// `undeliverable`) are acknowledged and nothing more, so a malformed sender
// does not start over.

import { emit } from 'weft:node/hud@0.4.0';
import { set } from 'weft:node/memory@0.4.0';
import { get as storeGet, set as storeSet } from 'weft:node/store@0.4.0';

export const plugin = {
  describe() {
    return {
      name: 'js-faulty',
      version: '0.1.0',
      description: 'Misbehaves on purpose (test guest)',
      inputSchema: '{}',
      outputSchema: '{}',
      capabilities: ['memory', 'hud', 'store'],
    };
  },

  tick(ctx, inbox) {
    if (inbox.length > 0 && inbox.every((m) => m.kind === 'undeliverable')) {
      return { messages: [], reply: undefined, done: false, interrupt: undefined };
    }
    const fault = JSON.parse(ctx.config || '{}').fault ?? 'none';
    if (fault === 'ask') return ask(inbox);
    if (fault === 'count') return count();
    if (fault === 'raise') throw new Error('a JavaScript bug');
    if (fault === 'fail') throw { tag: 'failed', val: 'failed on purpose' };
    if (fault === 'loop') {
      let n = 0;
      for (;;) n += 1;
    }
    if (fault === 'malformed') {
      return {
        messages: [
          { to: 'ok', kind: 'data', body: '{not json' },
          { to: 'stranger', kind: 'data', body: '{}' },
        ],
        reply: undefined,
        done: false,
        interrupt: undefined,
      };
    }
    set('thread', 'js', 'was here');
    emit('updated', JSON.stringify({ inbox: inbox.length }));
    return { messages: [], reply: 'ok', done: false, interrupt: undefined };
  },
};

const APPROVAL = JSON.stringify({
  type: 'object',
  properties: { approve: { type: 'boolean' } },
  required: ['approve'],
});

// Asks for approval, or replies with how the question ended.
// Adds one to the project's shared counter and replies with it.
function count() {
  const current = storeGet('counters', 'visits');
  const n = current === undefined ? 1 : Number(current) + 1;
  storeSet('counters', 'visits', String(n));
  return { messages: [], reply: String(n), done: false, interrupt: undefined };
}

function ask(inbox) {
  const notice = inbox.find((m) => m.kind === 'resume' && m.from === 'system');
  if (notice) {
    return { messages: [], reply: JSON.stringify(JSON.parse(notice.body)), done: false, interrupt: undefined };
  }
  return {
    messages: [],
    reply: undefined,
    done: false,
    interrupt: { question: 'Go on? (asked from JavaScript)', answerSchema: APPROVAL },
  };
}
