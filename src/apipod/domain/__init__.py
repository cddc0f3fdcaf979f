"""The domain: pure attrs models and rules. Imports the standard library and attrs only; no I/O."""
