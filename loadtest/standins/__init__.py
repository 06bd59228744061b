"""Loopback stand-ins for the outside services the agent talks to, speaking their real protocols."""
