"""Language-model backends: providers by config, the embedded local model, retries, limits and usage."""
