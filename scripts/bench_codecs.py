"""Is cattrs faster than the hand-written OpenAI chat codec at decoding a typical chat request?

    python scripts/bench_codecs.py [--number 20000]

Three decoders read the same body (a system prompt, three turns, one tool, a few options):

- ``hand``: ``apipod.dialects.openai.decode_request``, the codec in use (validation, paths, domain mapping);
- ``cattrs-detailed``: cattrs structuring the same wire shape into attrs classes, detailed validation on
  (what error paths need), and no mapping to the domain afterwards;
- ``cattrs-fast``: the same with detailed validation off (no usable error paths);
- ``cattrs+domain``: ``cattrs-detailed`` followed by the mapping to ``ChatRequest`` a cattrs codec would
  still need (roles, parts, system prompt, tools). It still skips the dialect's own checks (roles known,
  ``n``, output caps, tool choice, the client-facing error wording), so it flatters cattrs.
"""

from __future__ import annotations

import argparse
import timeit
from typing import Any

import attrs
import cattrs

from apipod.dialects.openai import decode_request
from apipod.domain import chat

BODY: dict[str, Any] = {
    "model": "gpt-4o-mini",
    "messages": [
        {"role": "system", "content": "You are a careful assistant. Answer briefly."},
        {"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": [{"type": "text", "text": "And of Italy? Use the tool if unsure."}]},
    ],
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "lookup",
                "description": "Look a fact up.",
                "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
            },
        }
    ],
    "temperature": 0.2,
    "max_tokens": 256,
    "stream": True,
    "user": "bench",
}


@attrs.frozen
class TextPart:
    type: str
    text: str


@attrs.frozen
class WireMessage:
    role: str
    content: str | list[TextPart]


@attrs.frozen
class WireFunction:
    name: str
    description: str = ""
    parameters: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class WireTool:
    type: str
    function: WireFunction


@attrs.frozen
class WireRequest:
    model: str
    messages: list[WireMessage]
    tools: list[WireTool] = attrs.field(factory=list)
    temperature: float | None = None
    max_tokens: int | None = None
    stream: bool = False
    user: str | None = None


def _converter(detailed: bool) -> cattrs.Converter:
    converter = cattrs.Converter(detailed_validation=detailed)

    def content(value: Any, _: Any) -> str | list[TextPart]:
        return value if isinstance(value, str) else converter.structure(value, list[TextPart])

    converter.register_structure_hook(str | list[TextPart], content)
    return converter


def _text(content: str | list[TextPart]) -> tuple[chat.TextPart, ...]:
    if isinstance(content, str):
        return (chat.TextPart(content),)
    return tuple(chat.TextPart(p.text) for p in content)


def to_domain(wire: WireRequest, body: dict[str, Any]) -> chat.ChatRequest:
    system = tuple(p for m in wire.messages if m.role == "system" for p in _text(m.content))
    return chat.ChatRequest(
        model=wire.model,
        messages=tuple(chat.Message(chat.Role(m.role), _text(m.content)) for m in wire.messages if m.role != "system"),
        system=system,
        tools=tuple(chat.ToolSpec(t.function.name, t.function.description, t.function.parameters) for t in wire.tools),
        max_output_tokens=wire.max_tokens,
        temperature=wire.temperature,
        stream=wire.stream,
        user=wire.user,
        dialect="openai",
        raw=body,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=20_000)
    number = parser.parse_args().number
    detailed, fast = _converter(True), _converter(False)
    assert detailed.structure(BODY, WireRequest) == fast.structure(BODY, WireRequest)
    assert to_domain(detailed.structure(BODY, WireRequest), BODY) == decode_request(BODY)
    decoders = {
        "hand": lambda: decode_request(BODY),
        "cattrs-detailed": lambda: detailed.structure(BODY, WireRequest),
        "cattrs-fast": lambda: fast.structure(BODY, WireRequest),
        "cattrs+domain": lambda: to_domain(detailed.structure(BODY, WireRequest), BODY),
    }
    for name, decode in decoders.items():
        best = min(timeit.repeat(decode, number=number, repeat=5))
        print(f"{name:16} {best / number * 1e6:8.2f} µs per request")


if __name__ == "__main__":
    main()
