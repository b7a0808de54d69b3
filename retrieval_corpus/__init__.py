"""Domain documents for retrieval-augmented prompts and their ingestion."""
