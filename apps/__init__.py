"""Applications built on the core engine's public API."""
