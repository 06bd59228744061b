"""Tenants' own agents (#13): lookup for calls, drafts, publishing, approvals."""
