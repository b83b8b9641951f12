"""Built-in text plugin (placeholder until implemented)."""
