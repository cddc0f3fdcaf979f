"""Telemetry adapters: Prometheus metrics through ``prometheus_client``."""
