"""llmops-gateway core package."""
