"""Statistics over models: the paired bootstrap and seed-level comparisons."""
