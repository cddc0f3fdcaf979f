"""Hypothesis strategies shared by the property tests: arbitrary JSON values, and "nearly valid" bodies
(a valid body with one value somewhere replaced by anything, or one key removed)."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

# Scalars as a hostile client or upstream could produce them once parsed: integers out to the edges of the
# 64-bit range orjson parses (a longer integer literal parses as a float), non-finite floats, any Unicode (no
# lone surrogates: no JSON parser yields them).
INT64 = st.integers(min_value=-(2**63), max_value=2**64 - 1)
SCALARS = (
    st.none()
    | st.booleans()
    | INT64
    | st.sampled_from([-(2**63), 2**63 - 1, 2**63, 2**64 - 1, 10**18])
    | st.floats()  # nan, inf and -inf included
    | st.text()
    | st.sampled_from(["", " ", "\x00", "user", "assistant", "text", "tool_use", "function", "image", "data:"])
)
# For the scalar fields a codec reads itself: integers no parser yields (past 64 bits, past float range).
WILD_SCALARS = SCALARS | st.sampled_from([2**64, -(2**64) - 1, 2**1100, -(2**1100), 10**400])

JSON = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=25,
)

Path = tuple[str | int, ...]


def _paths(value: Any, prefix: Path = ()) -> list[Path]:
    """Every location inside ``value`` (the value itself included, as the empty path)."""
    found: list[Path] = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found.extend(_paths(item, (*prefix, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(_paths(item, (*prefix, index)))
    return found


def _replaced(value: Any, path: Path, new: Any, *, delete: bool) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        copy = dict(value)
        if delete and not rest:
            del copy[head]
        else:
            copy[head] = _replaced(value[head], rest, new, delete=delete)
        return copy
    copy_list = list(value)
    if delete and not rest:
        del copy_list[head]  # type: ignore[arg-type]
    else:
        copy_list[head] = _replaced(value[head], rest, new, delete=delete)  # type: ignore[index]
    return copy_list


@st.composite
def perturbed(draw: st.DrawFn, bodies: st.SearchStrategy[Any]) -> Any:
    """A valid body with exactly one value replaced by an arbitrary JSON value, or one key/item removed."""
    body = draw(bodies)
    paths = _paths(body)[1:]  # never replace the whole body: that is the arbitrary-JSON test
    if not paths:
        return body
    path = draw(st.sampled_from(paths))
    if draw(st.booleans()):
        return _replaced(body, path, None, delete=True)
    return _replaced(body, path, draw(JSON), delete=False)


# -- valid wire bodies ----------------------------------------------------------------------------

TEXT = st.text(max_size=20)
WORD = st.text(st.characters(codec="ascii", categories=["L", "N"]), min_size=1, max_size=10)
SCHEMA = st.just({"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]})
ARGUMENTS_OBJECT = st.dictionaries(WORD, st.integers(-5, 5) | WORD, max_size=3)


def _optional(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=fields)


@st.composite
def openai_body(draw: st.DrawFn) -> dict[str, Any]:
    tool_call = st.fixed_dictionaries(
        {
            "id": WORD,
            "type": st.just("function"),
            "function": st.fixed_dictionaries({"name": WORD, "arguments": TEXT}),
        },
        optional={"extra_content": st.just({"google": {"thought_signature": "sig"}})},
    )
    user_part = st.one_of(
        st.fixed_dictionaries({"type": st.just("text"), "text": TEXT}),
        st.fixed_dictionaries({"type": st.just("image_url"), "image_url": st.just({"url": "https://x/y.png"})}),
        st.fixed_dictionaries(
            {"type": st.just("image_url"), "image_url": st.just({"url": "data:image/png;base64,AAAA"})}
        ),
    )
    message = st.one_of(
        st.fixed_dictionaries({"role": st.sampled_from(["system", "developer"]), "content": TEXT}),
        st.fixed_dictionaries({"role": st.just("user"), "content": TEXT | st.lists(user_part, max_size=3)}),
        st.fixed_dictionaries(
            {"role": st.just("assistant"), "content": st.none() | TEXT},
            optional={"tool_calls": st.lists(tool_call, max_size=2), "reasoning_content": TEXT},
        ),
        st.fixed_dictionaries({"role": st.just("tool"), "tool_call_id": WORD, "content": TEXT}),
    )
    tool = st.fixed_dictionaries(
        {"type": st.just("function"), "function": st.fixed_dictionaries({"name": WORD, "parameters": SCHEMA})}
    )
    body = {"model": draw(WORD), "messages": draw(st.lists(message, min_size=1, max_size=4))}
    body.update(
        draw(
            _optional(
                tools=st.lists(tool, max_size=2),
                tool_choice=st.sampled_from(["auto", "none", "required"])
                | st.just({"type": "function", "function": {"name": "f"}}),
                parallel_tool_calls=st.booleans(),
                max_tokens=st.integers(1, 4096),
                max_completion_tokens=st.integers(1, 4096),
                temperature=st.floats(0, 2),
                top_p=st.floats(0, 1),
                stop=TEXT | st.lists(TEXT, max_size=3),
                stream=st.booleans(),
                stream_options=st.just({"include_usage": True}),
                reasoning_effort=st.sampled_from(["low", "medium", "high", "none"]),
                user=TEXT,
                n=st.just(1),
            )
        )
    )
    return body


@st.composite
def anthropic_body(draw: st.DrawFn, *, max_tokens: bool = True) -> dict[str, Any]:
    text_block = st.fixed_dictionaries(
        {"type": st.just("text"), "text": TEXT}, optional={"cache_control": st.just({"type": "ephemeral"})}
    )
    image_block = st.fixed_dictionaries(
        {
            "type": st.just("image"),
            "source": st.sampled_from(
                [
                    {"type": "base64", "media_type": "image/png", "data": "AAAA"},
                    {"type": "url", "url": "https://x/y.png"},
                ]
            ),
        }
    )
    result_block = st.fixed_dictionaries(
        {"type": st.just("tool_result"), "tool_use_id": WORD},
        optional={"content": TEXT | st.lists(text_block | image_block, max_size=2), "is_error": st.booleans()},
    )
    use_block = st.fixed_dictionaries(
        {"type": st.just("tool_use"), "id": WORD, "name": WORD, "input": ARGUMENTS_OBJECT}
    )
    thinking_block = st.fixed_dictionaries({"type": st.just("thinking"), "thinking": TEXT, "signature": TEXT})
    redacted_block = st.fixed_dictionaries({"type": st.just("redacted_thinking"), "data": TEXT})
    user = st.fixed_dictionaries(
        {"role": st.just("user"), "content": TEXT | st.lists(text_block | image_block | result_block, max_size=3)}
    )
    assistant = st.fixed_dictionaries(
        {
            "role": st.just("assistant"),
            "content": TEXT | st.lists(text_block | use_block | thinking_block | redacted_block, max_size=3),
        }
    )
    tool = st.fixed_dictionaries(
        {"name": WORD, "input_schema": SCHEMA}, optional={"description": TEXT, "type": st.just("custom")}
    )
    body: dict[str, Any] = {"model": draw(WORD), "messages": draw(st.lists(user | assistant, min_size=1, max_size=4))}
    if max_tokens:
        body["max_tokens"] = draw(st.integers(1, 4096))
    body.update(
        draw(
            _optional(
                system=TEXT | st.lists(text_block, max_size=2),
                tools=st.lists(tool, max_size=2),
                tool_choice=st.sampled_from(
                    [{"type": "auto"}, {"type": "any"}, {"type": "none"}, {"type": "tool", "name": "f"}]
                ),
                thinking=st.sampled_from(
                    [{"type": "enabled", "budget_tokens": 2048}, {"type": "disabled"}, {"type": "adaptive"}]
                ),
                stop_sequences=st.lists(TEXT, max_size=3),
                metadata=st.fixed_dictionaries({}, optional={"user_id": TEXT}),
                temperature=st.floats(0, 1),
                top_p=st.floats(0, 1),
                top_k=st.integers(1, 100),
                stream=st.booleans(),
            )
        )
    )
    return body
