"""Tool names Gemini accepts, and the way back to the client's names.

Gemini wants ``[A-Za-z_][A-Za-z0-9_.:-]*`` (64 characters keeps Antigravity happy too). OpenAI and Anthropic
names almost always qualify, so the usual map is empty; a name that does not is rewritten, de-duplicated,
and restored in every answer so the client sees its own names.
"""

from __future__ import annotations

import re

from apipod.domain.chat import ChatRequest, ToolUsePart

_VALID = re.compile(r"[A-Za-z_][A-Za-z0-9_.:\-]{0,63}")
_BAD_CHAR = re.compile(r"[^A-Za-z0-9_.:\-]")
_MAX = 64


class ToolNames:
    """Client name -> wire name for one request; names are visited tools first, then history, so the
    encoder and the decoders of one request agree."""

    __slots__ = ("_used", "_wire")

    def __init__(self, request: ChatRequest) -> None:
        self._wire: dict[str, str] = {}
        self._used: set[str] = set()
        for tool in request.tools:
            self.wire(tool.name)
        for message in request.messages:
            for part in message.parts:
                if isinstance(part, ToolUsePart):
                    self.wire(part.name)

    def wire(self, name: str) -> str:
        known = self._wire.get(name)
        if known is not None:
            return known
        wire = name
        if not _VALID.fullmatch(name) or name in self._used:
            wire = _BAD_CHAR.sub("_", name) or "_"
            if not (wire[0].isalpha() or wire[0] == "_"):
                wire = "_" + wire
            wire = wire[:_MAX]
            base, n = wire, 1
            while wire in self._used:
                n += 1
                suffix = f"_{n}"
                wire = base[: _MAX - len(suffix)] + suffix
        self._wire[name] = wire
        self._used.add(wire)
        return wire

    def restore_map(self) -> dict[str, str]:
        """Wire name -> client name, only for the names that were rewritten (usually empty)."""
        return {wire: name for name, wire in self._wire.items() if wire != name}


def tool_name_map(request: ChatRequest) -> dict[str, str]:
    """What the decoders need to give the client back its own tool names (wire name -> client name)."""
    return ToolNames(request).restore_map()
