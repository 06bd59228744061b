"""Two-way SMS with the same agent: keywords, segment limits, the text-mode service."""
