"""The `{{name}}` node: answers each user message with the model and
counts the conversation's turns in its memory.

Build: `weft plugin build`; test the component in the sandbox:
`weft plugin test`. `wit_world` is generated from weft's contract by
componentize-py at build time.
"""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import hud, llm, log, memory, types

INPUT_SCHEMA = {
    "type": "object",
    "properties": {"text": {"type": "string"}},
    "required": ["text"],
}


class Plugin(exports.Plugin):
    def describe(self) -> types.NodeInfo:
        return types.NodeInfo(
            name="{{name}}",
            version="0.1.0",
            description="Answers the user with the model",
            input_schema=json.dumps(INPUT_SCHEMA),
            output_schema="{}",
            capabilities=[
                types.Capability.LLM,
                types.Capability.MEMORY,
                types.Capability.HUD,
                types.Capability.LOG,
            ],
        )

    def tick(self, ctx: types.Context, inbox: list[types.Message]) -> types.TickOutput:
        reply = None
        for message in inbox:
            text = json.loads(message.body).get("text", "")
            hud.progress("thinking…")
            turns = int(memory.get(memory.Scope.NODE, "turns") or "0") + 1
            memory.set(memory.Scope.NODE, "turns", str(turns))
            try:
                answer = llm.complete(
                    llm.CompletionRequest(
                        messages=[
                            llm.ChatMessage(role=llm.Role.SYSTEM, content="Answer in one short sentence."),
                            llm.ChatMessage(role=llm.Role.USER, content=text),
                        ],
                        max_tokens=60,
                        json_schema=None,
                        stream=False,
                    )
                )
            except Err as e:
                # A capability error (say, an exhausted budget) is a
                # `types.Error`; the tick fails with a `types.NodeError`.
                raise Err(types.NodeError_Capability(e.value))
            log.write(log.Level.INFO, f"turn {turns}: {answer.completion_tokens} tokens")
            reply = answer.text
        if reply is None:
            raise Err(types.NodeError_InvalidInput("no user message in the inbox"))
        return types.TickOutput(messages=[], reply=reply, done=True, interrupt=None)
