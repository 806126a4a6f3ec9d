"""A Python test guest that misbehaves on purpose, chosen by its config
`{"fault": …}`, so the engine's tests can check that a Python node's
faults are contained exactly like a Rust one's:

- `raise`: an uncaught Python exception (the instance traps);
- `fail`: a typed node error (`failed`);
- `loop`: an endless loop (fuel or the deadline stops it);
- `malformed`: a body that is not JSON, and a message to a node that is
  not a peer (the host rejects both);
- `ask`: asks a person (an interrupt, contract 0.3.0) whether to go on,
  with the answer schema `{"approve": boolean}`; in the frame after the
  answer (kind `resume` from the host) it replies with that notice's
  outcome, as JSON;
- `count`: adds one to the project's `store` key `counters/visits`
  (contract 0.3.0) and replies with the new count;
- anything else: replies `ok` after writing memory and a HUD event.

The host's notices that a message could not be delivered (kind
`undeliverable`) are acknowledged and nothing more, so a malformed sender
does not start over.
"""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import hud, memory, store, types


class Plugin(exports.Plugin):
    def describe(self) -> types.NodeInfo:
        return types.NodeInfo(
            name="py-faulty",
            version="0.1.0",
            description="Misbehaves on purpose (test guest)",
            input_schema="{}",
            output_schema="{}",
            capabilities=[types.Capability.MEMORY, types.Capability.HUD, types.Capability.STORE],
        )

    def tick(self, ctx: types.Context, inbox: list[types.Message]) -> types.TickOutput:
        if inbox and all(m.kind == "undeliverable" for m in inbox):
            return types.TickOutput(messages=[], reply=None, done=False, interrupt=None)
        fault = json.loads(ctx.config or "{}").get("fault", "none")
        if fault == "ask":
            return ask(inbox)
        if fault == "count":
            return count()
        if fault == "raise":
            raise ValueError("a Python bug")
        if fault == "fail":
            raise Err(types.NodeError_Failed("failed on purpose"))
        if fault == "loop":
            n = 0
            while True:
                n += 1
        if fault == "malformed":
            return types.TickOutput(
                messages=[
                    types.Outbound(to="ok", kind="data", body="{not json"),
                    types.Outbound(to="stranger", kind="data", body="{}"),
                ],
                reply=None,
                done=False,
                interrupt=None,
            )
        memory.set(memory.Scope.THREAD, "py", "was here")
        hud.emit(hud.EventKind.UPDATED, json.dumps({"inbox": len(inbox)}))
        return types.TickOutput(messages=[], reply="ok", done=False, interrupt=None)


def count() -> types.TickOutput:
    """Adds one to the project's shared counter and replies with it."""
    current = store.get("counters", "visits")
    n = int(current) + 1 if current is not None else 1
    store.set("counters", "visits", str(n))
    return types.TickOutput(messages=[], reply=str(n), done=False, interrupt=None)


APPROVAL = json.dumps(
    {
        "type": "object",
        "properties": {"approve": {"type": "boolean"}},
        "required": ["approve"],
    }
)


def ask(inbox: list[types.Message]) -> types.TickOutput:
    """Asks for approval, or replies with how the question ended."""
    for m in inbox:
        if m.kind == "resume" and m.from_ == "system":
            notice = json.loads(m.body)
            return types.TickOutput(
                messages=[], reply=json.dumps(notice), done=False, interrupt=None
            )
    return types.TickOutput(
        messages=[],
        reply=None,
        done=False,
        interrupt=types.Interrupt(
            question="Go on? (asked from Python)", answer_schema=APPROVAL
        ),
    )
