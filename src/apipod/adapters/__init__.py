"""Driven adapters implementing apipod.application.ports. Driver errors become domain errors here."""
