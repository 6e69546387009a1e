"""The bert-serving client (filled in by the serving issue)."""
