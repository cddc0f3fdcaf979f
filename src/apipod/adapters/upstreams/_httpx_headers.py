"""``httpx.Headers`` made from header byte pairs without httpx's per-header normalisation (PERF, issue 10).

``httpx.Headers(pairs)`` passes every name and value through two normalising functions and an ``isinstance``
each, and later finds the headers' encoding by decoding every one of them in Python: about 60 opcodes a
header, paid for the request apipod sends and again for each answer's headers. Byte pairs need none of it:
httpx keeps each header as ``(name, lowercased name, value)``, which is what is built here, and the encoding
test (do all of them decode as ASCII?) is one ``isascii`` over their concatenation. The result is the same
object ``httpx.Headers(pairs)`` would be, a test holds them equal over generated headers, and it leans on
httpx's ``_list``, which has had this shape since httpx 0.18.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain, repeat

import httpx

__all__ = ["decoded", "headers_of"]


def headers_of(pairs: Sequence[tuple[bytes, bytes]]) -> httpx.Headers:
    """``httpx.Headers(pairs)``, with ``encoding`` already known when every header is ASCII."""
    headers = httpx.Headers()
    if not pairs:
        return headers
    names, values = zip(*pairs, strict=True)  # in C, as below: no Python step per header
    headers._list = list(zip(names, map(bytes.lower, names), values, strict=True))
    if b"".join(chain.from_iterable(pairs)).isascii():
        headers.encoding = "ascii"  # else httpx finds it out (UTF-8 or ISO-8859-1) when asked, as before
    return headers


def decoded(headers: httpx.Headers) -> list[tuple[str, str]]:
    """``headers`` as ``str`` pairs, names in the case they were given, in the headers' encoding."""
    if not headers._list:
        return []
    names, _, values = zip(*headers._list, strict=True)
    encoding = repeat(headers.encoding)
    return list(zip(map(bytes.decode, names, encoding), map(bytes.decode, values, encoding), strict=True))
