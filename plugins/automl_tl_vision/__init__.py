"""Built-in vision plugin (placeholder until implemented)."""
