"""Reading an upstream's token counts: a count is a non-negative integer of sane size, whatever came on the wire.

Clamped rather than refused: the answer is already generated and billed, and a broken counter must not turn
it into an error. The cap keeps every sum the encoders make (totals, cache-inclusive inputs) inside the 64-bit
range orjson can write.
"""

from __future__ import annotations

MAX_TOKEN_COUNT = 2**53 - 1


def token_count(value: object) -> int:
    """``value`` as a count: 0 unless it is a positive integer (booleans are not), at most ``MAX_TOKEN_COUNT``."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return min(value, MAX_TOKEN_COUNT)
    return 0
