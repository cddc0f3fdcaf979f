"""anthropic package."""
