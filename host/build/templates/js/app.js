// The `{{name}}` node: answers each user message with the model and
// counts the conversation's turns in its memory.
//
// Build: `weft plugin build`; test the component in the sandbox:
// `weft plugin test`. One ES module: componentize-js does not bundle
// imports of other files (use a bundler such as esbuild for that).

import { complete } from 'weft:node/llm@0.4.0';
import { progress } from 'weft:node/hud@0.4.0';
import { get, set } from 'weft:node/memory@0.4.0';
import { write } from 'weft:node/log@0.4.0';

const INPUT_SCHEMA = {
  type: 'object',
  properties: { text: { type: 'string' } },
  required: ['text'],
};

export const plugin = {
  describe() {
    return {
      name: '{{name}}',
      version: '0.1.0',
      description: 'Answers the user with the model',
      inputSchema: JSON.stringify(INPUT_SCHEMA),
      outputSchema: '{}',
      capabilities: ['llm', 'memory', 'hud', 'log'],
    };
  },

  tick(ctx, inbox) {
    let reply;
    for (const message of inbox) {
      const text = JSON.parse(message.body).text ?? '';
      progress('thinking…');
      const turns = Number(get('node', 'turns') ?? '0') + 1;
      set('node', 'turns', String(turns));
      let answer;
      try {
        answer = complete({
          messages: [
            { role: 'system', content: 'Answer in one short sentence.' },
            { role: 'user', content: text },
          ],
          maxTokens: 60,
          jsonSchema: undefined,
          stream: false,
        });
      } catch (e) {
        // A capability error (say, an exhausted budget) arrives as an
        // exception whose `payload` is the `error` variant; the tick fails
        // with the node-error variant `capability`.
        throw { tag: 'capability', val: e.payload };
      }
      write('info', `turn ${turns}: ${answer.completionTokens} tokens`);
      reply = answer.text;
    }
    if (reply === undefined) {
      // Errors are returned by throwing the node-error variant itself (an
      // `Error` object would trap instead).
      throw { tag: 'invalid-input', val: 'no user message in the inbox' };
    }
    return { messages: [], reply, done: true, interrupt: undefined };
  },
};
