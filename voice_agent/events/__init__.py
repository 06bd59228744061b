"""Signed events for n8n and any receiver (interface.md, "Outgoing events").

``Events.emit`` turns a fact (a lead, a call's start or end, an analysis, a text, a
suspension) into an event record with a stable id and puts it on the write queue as an
outbox message of topic "events"; ``EventDelivery`` POSTs it, signed by the Standard
Webhooks scheme, to the tenant's own webhook or the global one. Kept import-light: the
settings validate the secret through ``voice_agent.events.secret``.
"""
