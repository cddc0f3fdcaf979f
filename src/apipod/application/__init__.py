"""Use cases and the ports they need. Imports ``apipod.domain`` only."""
