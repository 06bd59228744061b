"""Leads and calls as CRM records: the built-in CRM (our tables) always, mirrored to Twenty
through the outbox (topic "twenty") when TWENTY_API_URL and TWENTY_API_KEY are set."""
