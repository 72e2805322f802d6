"""Strategy-aware support agents: the strategy classifier and the response generator (strategy, then reply)."""
