"""Graph nodes (agents): one role each; filled in by the agent-graph work."""
