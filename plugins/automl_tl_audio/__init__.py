"""Built-in audio plugin (placeholder until implemented)."""
