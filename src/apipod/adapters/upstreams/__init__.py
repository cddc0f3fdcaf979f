"""upstreams package."""
