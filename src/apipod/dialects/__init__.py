"""Pure wire codecs: JSON <-> canonical domain objects. Imports apipod.domain and the stdlib (plus orjson/cattrs) only."""
