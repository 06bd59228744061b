"""Post-call analysis: a summary, an outcome and the agent's declared fields for every
finished call, made in the background after the call is stored (never on the call path)."""
