"""An upstream's Responses API stream (typed SSE events, docs/protocols/openai-responses.md §6) -> canonical
stream events.

- ``response.created`` opens the stream (``MessageStarted``); the terminal ``response.completed`` /
  ``response.incomplete`` gives the usage and the finish; ``response.failed`` and an ``error`` event end it
  with ``StreamFailed`` classified by the error's code (the ``error`` event usually precedes a
  ``response.failed``; the first one wins). There is no ``[DONE]``.
- Items: text deltas -> ``TextDelta``; reasoning summary (or raw reasoning) deltas -> ``ThinkingDelta``, a
  blank line between summary parts; the reasoning item's ``encrypted_content`` at ``output_item.done`` (the
  value to replay, it changes after ``added``) -> ``ThinkingSignature``; ``function_call`` ->
  ``ToolCallStarted`` (``call_id`` is the canonical id) + argument deltas; ``custom_tool_call`` -> a call whose
  arguments are the JSON text ``{"input": "<text>"}``, streamed as it comes: the opening, each delta
  escaped as a JSON string fragment, the closing at the item's end. Each item ends with ``BlockStopped``.
- An item whose content came only in ``output_item.done`` (no deltas) is emitted whole from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from apipod.dialects.responses.upstream_response import (
    SUMMARY_SEPARATOR,
    call_id,
    encrypted_content,
    error_codes,
    finish_reason,
    function_name,
    message_text,
    summary_text,
    usage_from_wire,
)
from apipod.dialects.upstream_faults import stream_failure
from apipod.domain.stream import (
    BlockStopped,
    Finished,
    MessageStarted,
    StreamEvent,
    StreamFailed,
    TextDelta,
    ThinkingDelta,
    ThinkingSignature,
    ToolCallDelta,
    ToolCallStarted,
    UsageReported,
)

_CUSTOM_OPEN = '{"input":"'
_CUSTOM_CLOSE = '"}'
_TERMINAL = frozenset({"response.completed", "response.incomplete"})


class _Item:
    """One output item being streamed: its kind, its tool-call key, whether any content came as deltas."""

    __slots__ = ("key", "kind", "streamed")

    def __init__(self, kind: str, key: int = -1) -> None:
        self.kind = kind
        self.key = key
        self.streamed = False


class StreamDecoder:
    """Decodes one upstream stream. Tool-call keys are ordinals of the calls in this answer."""

    __slots__ = ("_calls", "_done", "_items", "_started")

    def __init__(self) -> None:
        self._started = False
        self._done = False
        self._items: dict[int, _Item] = {}  # output_index -> the item open there
        self._calls = 0  # calls started so far: the next call's key

    def feed(self, event: str | None, data: bytes) -> list[StreamEvent]:
        """One SSE event; its JSON ``type`` decides (the ``event:`` name is optional on the wire)."""
        if self._done or not data or data.isspace():
            return []
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            self._done = True
            return [StreamFailed("upstream", "The upstream sent a malformed stream event.")]
        if not isinstance(payload, dict):
            return []
        kind = payload.get("type")
        if not isinstance(kind, str):
            kind = event or ""
        events: list[StreamEvent] = []
        if not self._started:
            self._start(payload, events)
        if kind == "response.output_text.delta" or kind == "response.refusal.delta":
            delta = payload.get("delta")
            if isinstance(delta, str) and delta:
                self._mark(payload)
                events.append(TextDelta(delta))
        elif kind == "response.function_call_arguments.delta":
            self._arguments(payload, events, custom=False)
        elif kind == "response.custom_tool_call_input.delta":
            self._arguments(payload, events, custom=True)
        elif kind == "response.reasoning_summary_text.delta" or kind == "response.reasoning_text.delta":
            delta = payload.get("delta")
            if isinstance(delta, str) and delta:
                self._mark(payload)
                events.append(ThinkingDelta(delta))
        elif kind == "response.reasoning_summary_part.added":
            index = payload.get("summary_index")
            item = self._item(payload)
            if isinstance(index, int) and index > 0 and item is not None and item.streamed:
                events.append(ThinkingDelta(SUMMARY_SEPARATOR))
        elif kind == "response.output_item.added":
            self._added(payload, events)
        elif kind == "response.output_item.done":
            self._item_done(payload, events)
        elif kind in _TERMINAL:
            self._finish(payload, events)
        elif kind == "response.failed":
            response = payload.get("response")
            error = response.get("error") if isinstance(response, Mapping) else None
            events.append(self._failure(error))
        elif kind == "error":
            events.append(self._failure(payload.get("error") if "error" in payload else payload))
        return events

    def close(self) -> list[StreamEvent]:
        """End of body: without a terminal event the answer was cut off."""
        if self._done:
            return []
        self._done = True
        events: list[StreamEvent] = [] if self._started else [MessageStarted()]
        events.append(StreamFailed("upstream", "The upstream stream ended before the answer was finished."))
        return events

    # -- lifecycle ----------------------------------------------------------------------------------------
    def _start(self, payload: Mapping[str, Any], events: list[StreamEvent]) -> None:
        self._started = True
        response = payload.get("response")
        response = response if isinstance(response, Mapping) else {}
        response_id, model = response.get("id"), response.get("model")
        events.append(
            MessageStarted(
                id=response_id if isinstance(response_id, str) else "", model=model if isinstance(model, str) else ""
            )
        )

    def _finish(self, payload: Mapping[str, Any], events: list[StreamEvent]) -> None:
        self._done = True
        response = payload.get("response")
        response = response if isinstance(response, Mapping) else {}
        usage = response.get("usage")
        if isinstance(usage, Mapping):
            events.append(UsageReported(usage_from_wire(usage)))
        events.append(Finished(finish_reason(response, saw_tool_call=self._calls > 0)))

    def _failure(self, error: object) -> StreamFailed:
        self._done = True
        codes, message = error_codes(error)
        return stream_failure(None, codes=codes, message=message)

    # -- items --------------------------------------------------------------------------------------------
    def _item(self, payload: Mapping[str, Any]) -> _Item | None:
        index = payload.get("output_index")
        return self._items.get(index) if isinstance(index, int) else None

    def _mark(self, payload: Mapping[str, Any]) -> None:
        item = self._item(payload)
        if item is not None:
            item.streamed = True

    def _added(self, payload: Mapping[str, Any], events: list[StreamEvent]) -> None:
        item = payload.get("item")
        index = payload.get("output_index")
        if not isinstance(item, Mapping) or not isinstance(index, int):
            return
        kind = item.get("type")
        if not isinstance(kind, str):
            return
        state = self._items[index] = _Item(kind)
        if kind == "function_call" or kind == "custom_tool_call":
            state.key = self._open_call(item, events)

    def _open_call(self, item: Mapping[str, Any], events: list[StreamEvent]) -> int:
        key = self._calls
        self._calls += 1
        events.append(ToolCallStarted(key=key, id=call_id(item) or f"call_{key}", name=function_name(item)))
        if item.get("type") == "custom_tool_call":
            events.append(ToolCallDelta(key, _CUSTOM_OPEN))
        return key

    def _arguments(self, payload: Mapping[str, Any], events: list[StreamEvent], *, custom: bool) -> None:
        delta = payload.get("delta")
        item = self._item(payload)
        if not isinstance(delta, str) or not delta or item is None or item.key < 0:
            return
        item.streamed = True
        events.append(ToolCallDelta(item.key, orjson.dumps(delta)[1:-1].decode() if custom else delta))

    def _item_done(self, payload: Mapping[str, Any], events: list[StreamEvent]) -> None:
        item = payload.get("item")
        index = payload.get("output_index")
        if not isinstance(item, Mapping):
            return
        kind = item.get("type")
        state = self._items.pop(index, None) if isinstance(index, int) else None
        if state is None:  # no output_item.added came for it: the whole item is here
            state = _Item(kind if isinstance(kind, str) else "")
            if kind == "function_call" or kind == "custom_tool_call":
                state.key = self._open_call(item, events)
        if kind == "message":
            text = "" if state.streamed else message_text(item)
            if text:
                events.append(TextDelta(text))
        elif kind == "reasoning":
            summary = "" if state.streamed else summary_text(item)
            if summary:
                events.append(ThinkingDelta(summary))
            signature = encrypted_content(item)
            if signature:
                events.append(ThinkingSignature(signature))
        elif kind == "function_call":
            arguments = item.get("arguments")
            if not state.streamed and isinstance(arguments, str) and arguments:
                events.append(ToolCallDelta(state.key, arguments))
        elif kind == "custom_tool_call":
            raw_input = item.get("input")
            if not state.streamed and isinstance(raw_input, str) and raw_input:
                events.append(ToolCallDelta(state.key, orjson.dumps(raw_input)[1:-1].decode()))
            events.append(ToolCallDelta(state.key, _CUSTOM_CLOSE))
        else:
            return  # hosted-tool items: nothing canonical was opened
        events.append(BlockStopped())
