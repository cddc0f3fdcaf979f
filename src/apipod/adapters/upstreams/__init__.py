"""Upstream adapters: one thin module per vendor over the shared HTTP core in ``_http``.

Each implements ``apipod.application.ports.UpstreamClient`` with its dialect's codecs; only
``apipod.bootstrap`` names them.
"""
