"""Use cases: what ssocred does, through the adapters; values in, data out."""
