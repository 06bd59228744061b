"""Outbound calling: the CPS-capped dialer, retries, AMD and voicemail, greetings made while
the phone rings."""
