"""gemini package."""
