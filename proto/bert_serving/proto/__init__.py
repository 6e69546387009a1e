"""The bert-serving wire format (filled in by the serving issue)."""
