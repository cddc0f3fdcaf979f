"""The names a Responses client's tools have in the canonical request, and the way back.

Canonical tools are flat functions. A ``namespace`` tool's members become ``<namespace>__<name>`` (§4.3: Codex
needs the ``namespace`` back on the call, and rejects a dotted name); a ``custom`` (free-form) tool becomes a
function taking one string, ``input``, and its calls are turned back into ``custom_tool_call`` items (§4.2: Codex
answers "unsupported call" to a ``function_call`` for a custom tool).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

NAMESPACE_SEPARATOR = "__"
CUSTOM_PARAMETERS: Mapping[str, Any] = {
    "type": "object",
    "properties": {"input": {"type": "string"}},
    "required": ["input"],
}


def flat_name(namespace: str | None, name: str) -> str:
    return f"{namespace}{NAMESPACE_SEPARATOR}{name}" if namespace else name


@attrs.frozen
class ClientTool:
    """What a canonical tool name stands for on the client's side."""

    name: str
    namespace: str | None = None
    custom: bool = False


class ToolNames:
    """Canonical name -> the client's tool, read once from the body's ``tools`` (lenient: the decoder has
    already validated them; anything odd is simply not listed)."""

    __slots__ = ("_tools",)

    def __init__(self, tools: object) -> None:
        self._tools: dict[str, ClientTool] = {}
        if isinstance(tools, Sequence) and not isinstance(tools, str):
            self._add(tools, None)

    def _add(self, tools: Sequence[Any], namespace: str | None) -> None:
        for tool in tools:
            if not isinstance(tool, Mapping) or not isinstance(name := tool.get("name"), str):
                continue
            kind = tool.get("type")
            if kind == "namespace" and namespace is None:
                inner = tool.get("tools")
                if isinstance(inner, Sequence) and not isinstance(inner, str):
                    self._add(inner, name)
            elif kind in ("function", "custom"):
                self._tools[flat_name(namespace, name)] = ClientTool(name, namespace, custom=kind == "custom")

    def resolve(self, canonical: str) -> ClientTool:
        """The client's tool for a canonical call name; an undeclared name is a plain function of that name."""
        tool = self._tools.get(canonical)
        return tool if tool is not None else ClientTool(canonical)
