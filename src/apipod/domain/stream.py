"""The canonical stream: a closed union of events every upstream decoder yields and every client encoder
consumes. Bytes and SSE exist only at the two outer edges.

Ordering contract: ``MessageStarted`` first; content events; ``UsageReported`` any number of times
(running totals, latest wins); ``Finished`` last. ``StreamFailed`` ends a stream that cannot finish.
A ``ToolCallStarted`` opens a tool call identified by ``key`` (its ordinal in this answer); its
``ToolCallDelta``s follow before any other content. ``BlockStopped`` closes whatever block is open; encoders
close open blocks by themselves too, so decoders of dialects without explicit stops may omit it.
"""

from __future__ import annotations

import enum

import attrs

from apipod.domain.chat import FinishReason, Usage


@attrs.frozen
class MessageStarted:
    """The first event. ``origin`` is the upstream kind that answers (set by the application's relay), for
    dialects that tag signatures with it."""

    id: str = ""
    model: str = ""
    usage: Usage = Usage()
    origin: str = ""
    # The answer follows as ``Relayed`` frames of the upstream's own stream (same dialect): the client's encoder
    # writes them as they are and nothing of its own but an error. The other events still come, for the books.
    relayed: bool = False


@attrs.frozen
class TextDelta:
    text: str


@attrs.frozen
class ThinkingDelta:
    text: str


@attrs.frozen
class ThinkingSignature:
    signature: str


@attrs.frozen
class RedactedThinking:
    data: str = attrs.field(repr=False)


@attrs.frozen
class ToolCallStarted:
    key: int
    id: str
    name: str
    signature: str | None = None


@attrs.frozen
class ToolCallDelta:
    key: int
    fragment: str


@attrs.frozen
class BlockStopped:
    pass


@attrs.frozen
class UsageReported:
    usage: Usage


@attrs.frozen
class Finished:
    reason: FinishReason
    stop_sequence: str | None = None


class FailureKind(enum.StrEnum):
    """What broke a stream off, for the client's dialect to render."""

    OVERLOADED = "overloaded"
    RATE_LIMITED = "rate_limited"
    UPSTREAM = "upstream"  # anything else from the upstream
    INTERNAL = "internal"


def _failure_kind(value: str) -> FailureKind:
    """An unknown kind from an upstream's error event is an upstream failure."""
    if isinstance(value, FailureKind):
        return value
    try:
        return FailureKind(value)
    except ValueError:
        return FailureKind.UPSTREAM


@attrs.frozen
class StreamFailed:
    """The upstream broke off; the stream ends after this event. ``message`` is for the client; ``detail``
    (the upstream's own words, which may describe apipod's account) is for the operator's log only."""

    kind: FailureKind = attrs.field(converter=_failure_kind)
    message: str
    detail: str = attrs.field(default="", eq=False, repr=False)


@attrs.frozen
class Relayed:
    """Whole SSE events of the upstream's stream, already in the client's dialect, written as they are (the
    same-dialect relay: no decoding and re-encoding per event). ``events`` counts them: about a token each,
    the estimate of an answer whose usage never came. ``arguments``: how many of the bytes are in events that
    carry a tool call's arguments (0 when none do): the relay does not parse them, so their size is what the
    upstream's ``max_response_bytes`` bounds."""

    data: bytes
    events: int = 1
    arguments: int = 0


StreamEvent = (
    MessageStarted
    | TextDelta
    | ThinkingDelta
    | ThinkingSignature
    | RedactedThinking
    | ToolCallStarted
    | ToolCallDelta
    | BlockStopped
    | UsageReported
    | Finished
    | StreamFailed
    | Relayed
)
