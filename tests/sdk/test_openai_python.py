#!/usr/bin/env python3
"""The official OpenAI Python SDK against edgechat's OpenAI-compatible gateway.

The SDK is used as any user would use it: only base_url and api_key point it at edgechat
(plus a timeout and no automatic retries, so every test is bounded and sees the gateway's
first answer). Expected answers come from the LLM simulator itself, asked directly.

Environment:
  EDGECHAT_URL      the worker, e.g. http://127.0.0.1:8787
  EDGECHAT_API_KEY  an edgechat API key (ec_sk_...)
  SIM_URL           the simulator the worker calls

Prints one line per test and ends with the line "N passed, M failed"; exits 0 only when
every test passed. Run it from tests/integration/openai_sdk.test.mjs (which sets all three
variables), or by hand against `npm run dev` with a key of your own.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import sys
import time
import traceback
import urllib.parse
import urllib.request

import openai
from openai import OpenAI

REQUEST_TIMEOUT_S = 20.0  # any one HTTP exchange
TEST_TIMEOUT_S = 30  # a whole test, streams included

# The upstream strings the test models map to (tests/support/stack.mjs, MODEL_ROUTES).
SIM_SMALL = "sim-small+tokens=24+interval=15"
SIM_CLAUDE = "sim-claude+tokens=16+interval=10"

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "The city name."}},
            "required": ["city"],
        },
    },
}


def env(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        print(f"test_openai_python: {name} is not set (see the docstring)", file=sys.stderr)
        sys.exit(2)
    return value.rstrip("/")


EDGECHAT_URL = env("EDGECHAT_URL")
API_KEY = env("EDGECHAT_API_KEY")
SIM_URL = env("SIM_URL")

client = OpenAI(base_url=f"{EDGECHAT_URL}/v1", api_key=API_KEY, timeout=REQUEST_TIMEOUT_S, max_retries=0)


# --- helpers -------------------------------------------------------------------------------


def unique(text: str) -> str:
    """Message text no other test (or earlier run) uses: keeps cache and sim records apart."""
    return f"{text} [{secrets.token_hex(6)}]"


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def sim_json(method: str, path: str, body: object | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(SIM_URL + path, data=data, method=method, headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=REQUEST_TIMEOUT_S) as res:
        return json.loads(res.read())


def sim_completion(upstream: str, messages: list[dict], **extra) -> dict:
    """The simulator's own non-streamed answer for an upstream model string."""
    return sim_json("POST", "/v1/chat/completions", {"model": upstream, "messages": messages, **extra})


def sim_answer(upstream: str, messages: list[dict]) -> str:
    return sim_completion(upstream, messages)["choices"][0]["message"]["content"]


def sim_requests(text: str) -> list[dict]:
    """The requests the simulator received whose messages contain `text`."""
    return sim_json("GET", "/_sim/requests?contains=" + urllib.parse.quote(text))["data"]


def eq(actual, expected, what: str) -> None:
    if actual != expected:
        raise AssertionError(f"{what}: expected {expected!r}, got {actual!r}")


def ok(condition, what: str) -> None:
    if not condition:
        raise AssertionError(what)


def expect_status_error(cls: type[openai.APIStatusError], status: int, call) -> openai.APIStatusError:
    """Runs `call`, which must raise `cls` with `status` and an OpenAI-shaped error body."""
    try:
        call()
    except cls as err:
        eq(err.status_code, status, "status")
        body = err.body
        ok(isinstance(body, dict), f"error body is an object: {body!r}")
        for key in ("message", "type", "param", "code"):
            ok(key in body, f"error body has {key!r}: {body!r}")
        ok(isinstance(body["message"], str) and body["message"], f"error message is a non-empty string: {body!r}")
        ok(isinstance(body["type"], str) and body["type"], f"error type is a non-empty string: {body!r}")
        ok(err.request_id, "the error response carries x-request-id")
        return err
    except openai.APIStatusError as err:
        raise AssertionError(f"expected {cls.__name__} ({status}), got {type(err).__name__} ({err.status_code}): {err.body!r}")
    raise AssertionError(f"expected {cls.__name__} ({status}), but the call succeeded")


# --- tests ---------------------------------------------------------------------------------

TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


@test
def models_list_contains_the_test_models():
    models = list(client.models.list())
    ids = [m.id for m in models]
    for name in ("sim-small", "claude"):
        ok(name in ids, f"{name!r} in {ids}")
    for m in models:
        eq(m.object, "model", f"object of {m.id}")


@test
def completion_equals_the_simulator_answer():
    messages = user(unique("Describe the tides"))
    res = client.chat.completions.create(model="sim-small", messages=messages)
    expected = sim_answer(SIM_SMALL, messages)
    eq(res.object, "chat.completion", "object")
    eq(res.model, "sim-small", "model")
    eq(len(res.choices), 1, "choices")
    choice = res.choices[0]
    eq(choice.message.role, "assistant", "role")
    eq(choice.message.content, expected, "content")
    eq(choice.finish_reason, "stop", "finish_reason")
    eq(res.usage.completion_tokens, 24, "usage.completion_tokens")
    ok(res.usage.prompt_tokens > 0, f"usage.prompt_tokens > 0: {res.usage}")
    eq(res.usage.total_tokens, res.usage.prompt_tokens + res.usage.completion_tokens, "usage.total_tokens")


@test
def stream_with_usage_equals_the_simulator_answer():
    messages = user(unique("Explain rainbows"))
    stream = client.chat.completions.create(
        model="sim-small", messages=messages, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    expected = sim_answer(SIM_SMALL, messages)
    ok(chunks, "at least one chunk")
    for c in chunks:
        eq(c.object, "chat.completion.chunk", "chunk object")
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    eq("".join(pieces), expected, "streamed text")
    ok(len(pieces) >= 2, f"the answer arrives in several deltas, not {len(pieces)}")
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    eq(finish, ["stop"], "finish reasons")
    last = chunks[-1]
    ok(last.usage is not None, f"the final chunk carries usage: {last}")
    eq(last.choices, [], "choices of the usage chunk")
    eq(last.usage.completion_tokens, 24, "usage.completion_tokens")
    ok(all(c.usage is None for c in chunks[:-1]), "only the final chunk carries usage")


@test
def tool_call_stream_assembles_into_one_call():
    messages = user(unique("What is the weather in Lisbon?"))
    stream = client.chat.completions.create(model="sim-small", messages=messages, tools=[WEATHER_TOOL], stream=True)
    calls: dict[int, dict] = {}
    text, finish = "", []
    for chunk in stream:
        for choice in chunk.choices:
            delta = choice.delta
            text += delta.content or ""
            for tc in delta.tool_calls or []:
                call = calls.setdefault(tc.index, {"id": "", "name": "", "arguments": ""})
                call["id"] += tc.id or ""
                if tc.function:
                    call["name"] += tc.function.name or ""
                    call["arguments"] += tc.function.arguments or ""
            if choice.finish_reason:
                finish.append(choice.finish_reason)
    eq(finish, ["tool_calls"], "finish reasons")
    eq(len(calls), 1, f"number of tool calls in {calls}")
    call = next(iter(calls.values()))
    eq(call["name"], "get_weather", "tool name")
    ok(call["id"], "the tool call has an id")
    eq(text, "", "no text next to the tool call")
    args = json.loads(call["arguments"])
    ok(isinstance(args, dict) and isinstance(args.get("city"), str), f"arguments {args!r} have a string city")
    expected = sim_completion(SIM_SMALL, messages, tools=[WEATHER_TOOL])["choices"][0]["message"]["tool_calls"][0]
    eq(args, json.loads(expected["function"]["arguments"]), "arguments (as the simulator answers them)")


@test
def wrong_api_key_is_an_authentication_error():
    bad = OpenAI(base_url=f"{EDGECHAT_URL}/v1", api_key="ec_sk_" + "A" * 43, timeout=REQUEST_TIMEOUT_S, max_retries=0)
    expect_status_error(
        openai.AuthenticationError,
        401,
        lambda: bad.chat.completions.create(model="sim-small", messages=user(unique("Who am I?"))),
    )
    expect_status_error(openai.AuthenticationError, 401, lambda: bad.models.list())


@test
def models_retrieve_answers_a_routed_model_and_404_for_others():
    m = client.models.retrieve("claude")
    eq((m.id, m.object, m.owned_by), ("claude", "model", "anthropic"), "retrieved model")
    err = expect_status_error(openai.NotFoundError, 404, lambda: client.models.retrieve("no-such-model"))
    eq(err.code, "model_not_found", "error code")


@test
def unknown_model_is_not_found():
    expect_status_error(
        openai.NotFoundError,
        404,
        lambda: client.chat.completions.create(model="no-such-model", messages=user(unique("Anyone there?"))),
    )


@test
def temperature_out_of_range_is_a_bad_request():
    text = unique("Too hot")
    expect_status_error(
        openai.BadRequestError,
        400,
        lambda: client.chat.completions.create(model="sim-small", messages=user(text), temperature=5),
    )
    eq(sim_requests(text), [], "requests that reached the simulator")


@test
def empty_messages_is_a_bad_request():
    expect_status_error(
        openai.BadRequestError,
        400,
        lambda: client.chat.completions.create(model="sim-small", messages=[]),
    )


def cached_pair(text: str, **params):
    """Sends the same request twice with raw responses; returns both (headers, content)."""
    out = []
    for _ in range(2):
        raw = client.chat.completions.with_raw_response.create(model="sim-small", messages=user(text), **params)
        out.append((raw.headers.get("x-edgechat-cache"), raw.parse().choices[0].message.content))
    return out


@test
def temperature_zero_is_served_from_the_cache_the_second_time():
    text = unique("Name three rivers")
    (h1, c1), (h2, c2) = cached_pair(text, temperature=0)
    eq(h1, "miss", "x-edgechat-cache of the first response")
    eq(h2, "hit", "x-edgechat-cache of the second response")
    eq(c2, c1, "cached content")
    eq(len(sim_requests(text)), 1, "requests that reached the simulator")  # before asking it ourselves
    eq(c1, sim_answer(SIM_SMALL, user(text)), "content")


@test
def a_seed_is_served_from_the_cache_the_second_time():
    text = unique("Name three mountains")
    (h1, c1), (h2, c2) = cached_pair(text, seed=42)
    eq((h1, h2), ("miss", "hit"), "x-edgechat-cache of the two responses")
    eq(c2, c1, "cached content")
    eq(len(sim_requests(text)), 1, "requests that reached the simulator")


@test
def non_deterministic_requests_are_not_cached():
    text = unique("Name three lakes")
    (h1, _), (h2, _) = cached_pair(text, temperature=0.7)
    ok(h1 != "hit" and h2 != "hit", f"x-edgechat-cache of the two responses: {h1!r}, {h2!r}")
    eq(len(sim_requests(text)), 2, "requests that reached the simulator")


@test
def anthropic_routed_model_streams_through_the_openai_sdk():
    messages = user(unique("Hello Claude"))
    stream = client.chat.completions.create(
        model="claude", messages=messages, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    recs = sim_requests(messages[0]["content"])  # before asking the simulator ourselves
    eq([r["path"] for r in recs], ["/v1/messages"], "upstream paths (Anthropic wire format)")
    ok(text, "some text streamed")
    # The simulator's text depends on the base model and the prompt only, not the wire format.
    eq(text, sim_answer(SIM_CLAUDE, messages), "streamed text")
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    eq(finish, ["stop"], "finish reasons")
    ok(chunks[-1].usage is not None, "the final chunk carries usage")
    eq(chunks[-1].usage.completion_tokens, 16, "usage.completion_tokens")


@test
def embeddings_equal_the_simulator_vectors():
    texts = [unique("Embed the tides"), unique("Embed the moon")]
    # The SDK's default: base64 on the wire, decoded by the SDK.
    res = client.embeddings.create(model="sim-embed", input=texts)
    expected = sim_json("POST", "/v1/embeddings", {"model": "sim-embed", "input": texts, "encoding_format": "float"})
    eq(res.object, "list", "object")
    eq([d.index for d in res.data], [0, 1], "indices")
    eq([list(d.embedding) for d in res.data], [d["embedding"] for d in expected["data"]], "vectors")
    eq(res.usage.prompt_tokens, expected["usage"]["prompt_tokens"], "usage.prompt_tokens")
    short = client.embeddings.create(model="sim-embed", input=texts[0], dimensions=8, encoding_format="float")
    eq(len(short.data[0].embedding), 8, "dimensions")
    err = expect_status_error(openai.BadRequestError, 400, lambda: client.embeddings.create(model="sim-embed", input=[]))
    eq(err.body["param"], "input", "param of an empty input")
    err = expect_status_error(openai.BadRequestError, 400, lambda: client.embeddings.create(model="claude", input="x"))
    eq(err.body["param"], "model", "param of an Anthropic-routed model")


# --- runner --------------------------------------------------------------------------------


class TestTimeout(Exception):
    pass


def on_alarm(signum, frame):
    raise TestTimeout(f"test took longer than {TEST_TIMEOUT_S} s")


@test
def responses_create_equals_the_simulator_answer():
    content = unique("Describe the moon")
    res = client.responses.create(model="sim-small", input=content, instructions="Be brief.")
    expected = sim_answer(SIM_SMALL, [{"role": "system", "content": "Be brief."}, *user(content)])
    eq(res.object, "response", "object")
    eq(res.status, "completed", "status")
    eq(res.output_text, expected, "output_text")
    eq(res.output[0].type, "message", "first output item")
    eq(res.usage.output_tokens, 24, "usage.output_tokens")
    eq(res.usage.total_tokens, res.usage.input_tokens + res.usage.output_tokens, "usage.total_tokens")


@test
def responses_stream_events_assemble_the_answer():
    content = unique("Describe the sun")
    stream = client.responses.create(model="sim-small", input=content, stream=True)
    events = list(stream)
    types = [e.type for e in events]
    eq(types[0], "response.created", "first event")
    eq(types[-1], "response.completed", "last event")
    eq([e.sequence_number for e in events], list(range(len(events))), "sequence numbers")
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    eq(text, sim_answer(SIM_SMALL, user(content)), "streamed text")
    eq(events[-1].response.output[0].content[0].text, text, "the completed response's text")


@test
def responses_stored_items_are_referred_to_and_previous_response_id_is_a_bad_request():
    hello = unique("Hello")
    first = client.responses.create(model="sim-small", input=hello, store=True)
    eq(first.store, True, "store")
    then = unique("And then?")
    referred = [{"role": "user", "content": hello}, {"type": "item_reference", "id": first.output[0].id}]
    second = client.responses.create(model="sim-small", input=referred + [{"role": "user", "content": then}])
    expected = sim_answer(SIM_SMALL, user(hello) + [{"role": "assistant", "content": first.output_text}] + user(then))
    eq(second.output_text, expected, "the answer after the referred item")
    err = expect_status_error(
        openai.BadRequestError,
        400,
        lambda: client.responses.create(model="sim-small", input="x", previous_response_id=first.id),
    )
    eq(err.body["param"], "previous_response_id", "param")


def main() -> int:
    signal.signal(signal.SIGALRM, on_alarm)
    passed = failed = 0
    print(f"openai {openai.__version__} (python {sys.version.split()[0]}) against {EDGECHAT_URL}/v1", flush=True)
    for fn in TESTS:
        name = fn.__name__.replace("_", " ")
        started = time.monotonic()
        signal.alarm(TEST_TIMEOUT_S)
        try:
            fn()
        except BaseException as err:  # noqa: BLE001 - a test failure of any kind is reported, not raised
            signal.alarm(0)
            if isinstance(err, KeyboardInterrupt):
                raise
            failed += 1
            ms = (time.monotonic() - started) * 1000
            cause = f" (caused by {type(err.__cause__).__name__}: {err.__cause__})" if err.__cause__ else ""
            print(f"FAIL {name} ({ms:.0f} ms): {type(err).__name__}: {err}{cause}", flush=True)
            traceback.print_exc(file=sys.stderr)
        else:
            signal.alarm(0)
            passed += 1
            print(f"ok   {name} ({(time.monotonic() - started) * 1000:.0f} ms)", flush=True)
    print(f"{passed} passed, {failed} failed", flush=True)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
