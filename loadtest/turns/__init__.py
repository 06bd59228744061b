"""End-of-turn benchmark: recorded caller turns labelled with their true end (#18).

``make_turns`` writes the set (run by hand, commit what it writes); ``bench`` replays it
through the real endpointing path at frame level and plots false cut-offs against wait.
"""
