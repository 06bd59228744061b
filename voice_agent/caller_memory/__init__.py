"""Caller memory: who an inbound caller is (name, last interaction), known before the
greeting is chosen, from a cache kept off the call path."""
