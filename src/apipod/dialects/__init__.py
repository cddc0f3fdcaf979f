"""Pure wire codecs: JSON <-> canonical domain objects.

Imports apipod.domain, the stdlib, orjson and cattrs only.
"""
