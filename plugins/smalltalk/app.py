"""The smalltalk expert, written in Python: greetings, thanks, goodbyes and
questions about the assistant itself.

The PA routes small talk here with a `job` (the protocol of
`sdk/protocol`); the expert writes a short, friendly draft with the model
and sends it to `output` as a `respond`. It remembers, per thread, the
user's name when they give it ("I'm Ada", "my name is Ada") and how many
turns of small talk there were, so a second greeting is not answered like
the first. If the model fails, the draft is written without it and the
failure is logged: small talk must never fail the run.

Config: `{"output": "output", "max_tokens": 60}`.

Built with componentize-py against `wit/` (`weft plugin build` or
`cargo xtask build-plugins`); `wit_world` is the package componentize-py
generates from the contract.
"""

import json
import re

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import hud, llm, log, memory, types

VERSION = "0.1.0"

# Thread memory: the user's name, once they said it.
NAME_KEY = "smalltalk.name"
# Node memory: how many small-talk turns this thread had.
TURNS_KEY = "turns"

JOB_SCHEMA = {
    "type": "object",
    "properties": {
        "job": {"type": "string", "minLength": 1},
        "request": {"type": "string"},
        "language": {"type": "string"},
        "response_hint": {"type": "string"},
        "attempt": {"type": "integer", "minimum": 1},
    },
    "required": ["job", "request", "language", "response_hint", "attempt"],
    "additionalProperties": False,
}

RESPOND_SCHEMA = {
    "type": "object",
    "properties": {
        "request": {"type": "string"},
        "language": {"type": "string"},
        "response_hint": {"type": "string"},
        "draft": {"type": ["string", "null"]},
        "error": {"type": ["string", "null"]},
    },
    "required": ["request", "language"],
    "additionalProperties": False,
}

SYSTEM = (
    "You are a friendly assistant for a heating-cost billing database. "
    "Answer the user's small talk in one or two short sentences. "
    "Do not invent facts or numbers."
)

NAME_PATTERN = re.compile(
    r"\b(?:my name is|i am|i'm|call me|ich bin|ich heisse|ich heiße)\s+([A-Z][\w-]{1,30})",
    re.IGNORECASE,
)
GREETINGS = ("hello", "hi", "hey", "hallo", "moin", "servus", "good morning", "good evening")
THANKS = ("thank", "thanks", "danke", "cheers")
FAREWELLS = ("bye", "goodbye", "tschüss", "ciao", "see you")


class Plugin(exports.Plugin):
    def describe(self) -> types.NodeInfo:
        return types.NodeInfo(
            name="smalltalk",
            version=VERSION,
            description="Answers greetings, thanks and questions about the assistant (Python)",
            input_schema=json.dumps(JOB_SCHEMA),
            output_schema=json.dumps(RESPOND_SCHEMA),
            capabilities=[
                types.Capability.LLM,
                types.Capability.MEMORY,
                types.Capability.HUD,
                types.Capability.LOG,
            ],
        )

    def tick(self, ctx: types.Context, inbox: list[types.Message]) -> types.TickOutput:
        config = parse_config(ctx.config)
        messages = []
        for message in inbox:
            if message.kind != "job":
                log.write(log.Level.WARN, f"ignoring a `{message.kind}` message from {message.from_}")
                continue
            job = json.loads(message.body)
            messages.append(answer(ctx, config, job))
        return types.TickOutput(messages=messages, reply=None, done=False, interrupt=None)


def parse_config(text: str) -> dict:
    """The node's config with defaults; a bad value is the graph's error."""
    config = {"output": "output", "max_tokens": 60}
    given = json.loads(text or "{}")
    unknown = set(given) - set(config)
    if unknown:
        invalid(f"unknown config keys: {', '.join(sorted(unknown))}")
    config.update(given)
    if not isinstance(config["output"], str) or not config["output"]:
        invalid("`output` must name the output node")
    if not isinstance(config["max_tokens"], int) or config["max_tokens"] < 1:
        invalid("`max_tokens` must be a positive integer")
    return config


def invalid(reason: str):
    raise Err(types.NodeError_InvalidInput(f"bad smalltalk config: {reason}"))


def answer(ctx: types.Context, config: dict, job: dict) -> types.Outbound:
    text = job["request"] or job["job"]
    hud.progress("chatting…")

    name = remembered_name(text)
    turns = int(memory.get(memory.Scope.NODE, TURNS_KEY) or "0") + 1
    memory.set(memory.Scope.NODE, TURNS_KEY, str(turns))
    hud.emit(hud.EventKind.PERCEIVED, json.dumps({"kind": kind_of(text), "turn": turns, "name": name}))

    prompt = f"The user said: {text}"
    if name:
        prompt += f"\nThe user's name is {name}."
    if turns > 1:
        prompt += "\nYou have already greeted them in this conversation; do not greet them again."
    try:
        completion = llm.complete(
            llm.CompletionRequest(
                messages=[
                    llm.ChatMessage(role=llm.Role.SYSTEM, content=SYSTEM),
                    llm.ChatMessage(role=llm.Role.USER, content=prompt),
                ],
                max_tokens=config["max_tokens"],
                json_schema=None,
                stream=False,
            )
        )
        draft = completion.text.strip()
    except Err as e:
        # Budgets and unavailable providers are the host's to report; the
        # user still gets an answer.
        log.write(log.Level.WARN, f"the model failed ({describe_error(e.value)}); answering without it")
        draft = ""
    if not draft:
        draft = fallback(text, name, turns)

    respond = {
        "request": job["request"],
        "language": job["language"] or "en",
        "response_hint": job["response_hint"] or "friendly small talk, one or two sentences",
        "draft": draft,
    }
    return types.Outbound(to=config["output"], kind="respond", body=json.dumps(respond))


def remembered_name(text: str):
    """The user's name: said now (and remembered), or remembered before."""
    found = NAME_PATTERN.search(text)
    if found:
        name = found.group(1).capitalize()
        memory.set(memory.Scope.THREAD, NAME_KEY, name)
        return name
    return memory.get(memory.Scope.THREAD, NAME_KEY)


def kind_of(text: str) -> str:
    lowered = text.lower()
    for kind, words in (("farewell", FAREWELLS), ("thanks", THANKS), ("greeting", GREETINGS)):
        if any(re.search(rf"\b{re.escape(w)}\b", lowered) for w in words):
            return kind
    return "chat"


def fallback(text: str, name, turns: int) -> str:
    """A draft written without the model."""
    who = f", {name}" if name else ""
    kind = kind_of(text)
    if kind == "farewell":
        return f"Goodbye{who}! Come back any time."
    if kind == "thanks":
        return f"You're welcome{who}!"
    if kind == "greeting" and turns == 1:
        return f"Hello{who}! Ask me about customers, properties, devices or readings."
    return f"I'm here{who}. Ask me about customers, properties, devices or readings."


def describe_error(error) -> str:
    value = getattr(error, "value", "")
    return f"{type(error).__name__.removeprefix('Error_')}: {value}" if value != "" else type(error).__name__
