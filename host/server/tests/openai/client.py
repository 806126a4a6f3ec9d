"""OpenAI's official Python client against `weft serve`'s /v1.

Run by host/server/tests/openai.rs with the tools' Python (.tools/venv,
which `cargo xtask test` fills), against the real binary on a scripted
model. It reads:

  OPENAI_BASE_URL   http://127.0.0.1:PORT/v1
  OPENAI_API_KEY    an operator key
  WEFT_VIEWER_KEY   a viewer key

Every check is an assert (a failure exits non-zero with the traceback);
the last line printed is a JSON summary that the Rust test checks against
/api/v1 (the runs of the conversation's thread).
"""

import json
import os

import openai
from openai import OpenAI

QUESTION = "How many devices does customer 1042 have?"
FOLLOW_UP = "And how many properties does that customer own?"
PROGRESS = "writing the reply"  # the output node's progress line

client = OpenAI(max_retries=0)

# Models: the served graphs, and `weft`, the active graph's alias.
models = client.models.list()
ids = [m.id for m in models.data]
assert "assistant" in ids, ids
assert "weft" in ids, ids
assert all(m.object == "model" and m.owned_by == "weft" for m in models.data), models
assert client.models.retrieve("assistant").id == "assistant"

# A whole answer, on a new thread; the thread comes back in a header and
# in the body.
raw = client.chat.completions.with_raw_response.create(
    model="assistant",
    messages=[
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": QUESTION},
    ],
)
completion = raw.parse()
thread = raw.headers["x-weft-thread"]
assert completion.thread_id == thread, (completion, thread)
assert completion.object == "chat.completion", completion
assert completion.model == "assistant", completion
assert completion.id == f"chatcmpl-{completion.run_id}", completion
answer = completion.choices[0].message.content
assert completion.choices[0].message.role == "assistant", completion
assert completion.choices[0].finish_reason == "stop", completion
assert "3 metering devices" in answer, answer
assert PROGRESS not in answer, answer
usage = completion.usage
assert usage.prompt_tokens > 0 and usage.completion_tokens > 0, usage
assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens, usage

# The same question streamed, on another new thread: the pieces add up to
# the whole answer, with no progress line among them.
stream = client.chat.completions.create(
    model="assistant",
    messages=[{"role": "user", "content": QUESTION}],
    stream=True,
    stream_options={"include_usage": True},
)
chunks = list(stream)
assert all(c.object == "chat.completion.chunk" for c in chunks), chunks
pieces = [
    c.choices[0].delta.content
    for c in chunks
    if c.choices and c.choices[0].delta.content
]
streamed = "".join(pieces)
assert streamed == answer, (streamed, answer)
assert len(pieces) > 3, f"streamed in {len(pieces)} pieces: {pieces}"
assert not any(PROGRESS in p for p in pieces), pieces
assert chunks[0].choices[0].delta.role == "assistant", chunks[0]
finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
assert finishes == ["stop"], finishes
assert chunks[-1].choices == [] and chunks[-1].usage is not None, chunks[-1]
assert chunks[-1].usage.total_tokens > 0, chunks[-1].usage
assert all(c.usage is None for c in chunks[:-1]), "usage only in the last chunk"
stream_thread = chunks[0].thread_id
assert stream_thread != thread, "a request without a thread starts a new one"

# A follow-up on the same conversation: metadata.thread_id continues the
# thread (its memory and history); so does the X-Weft-Thread header.
follow = client.chat.completions.create(
    model="assistant",
    messages=[
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": answer},
        {"role": "user", "content": FOLLOW_UP},
    ],
    metadata={"thread_id": thread},
)
assert follow.thread_id == thread, follow
assert follow.run_id != completion.run_id, follow
assert follow.choices[0].message.content, follow
third = client.chat.completions.create(
    model="weft",  # the active graph: the assistant
    messages=[{"role": "user", "content": "Thanks!"}],
    extra_headers={"X-Weft-Thread": thread},
)
assert third.thread_id == thread, third
assert third.model == "assistant", third

# A wrong key: AuthenticationError (401), for models and chat alike.
wrong = OpenAI(api_key="weft_not-a-key", max_retries=0)
for call in (
    lambda: wrong.models.list(),
    lambda: wrong.chat.completions.create(
        model="assistant", messages=[{"role": "user", "content": QUESTION}]
    ),
):
    try:
        call()
        raise AssertionError("a wrong key was accepted")
    except openai.AuthenticationError as e:
        assert e.status_code == 401 and e.code == "invalid_api_key", e

# An unknown model: NotFoundError (404) naming the parameter.
try:
    client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": QUESTION}]
    )
    raise AssertionError("an unknown model was run")
except openai.NotFoundError as e:
    assert e.code == "model_not_found" and e.param == "model", e

# Bad requests: BadRequestError (400) with OpenAI's codes.
for kwargs, code, param in (
    ({"messages": []}, "empty_array", "messages"),
    (
        {"messages": [{"role": "user", "content": QUESTION}], "extra_body": {"frobnicate": 1}},
        "unknown_parameter",
        "frobnicate",
    ),
    ({"messages": [{"role": "system", "content": "Be brief."}]}, "invalid_value", "messages"),
):
    try:
        client.chat.completions.create(model="assistant", **kwargs)
        raise AssertionError(f"accepted: {kwargs}")
    except openai.BadRequestError as e:
        assert (e.code, e.param) == (code, param), (kwargs, e)

# A viewer lists models but runs nothing: PermissionDeniedError (403).
viewer = OpenAI(api_key=os.environ["WEFT_VIEWER_KEY"], max_retries=0)
assert "assistant" in [m.id for m in viewer.models.list().data]
try:
    viewer.chat.completions.create(
        model="assistant", messages=[{"role": "user", "content": QUESTION}]
    )
    raise AssertionError("a viewer ran a graph")
except openai.PermissionDeniedError as e:
    assert e.code == "permission_denied", e

print(
    json.dumps(
        {
            "thread": thread,
            "runs": [completion.run_id, follow.run_id, third.run_id],
            "answer": answer,
            "last": third.choices[0].message.content,
            "stream_thread": stream_thread,
            "usage": usage.total_tokens,
        }
    )
)
