"""Whole cascade calls against the OpenAI stand-in with the fixture-aware transcriber."""

from tests.calls.conftest import standin, transcriber, utterances

__all__ = ["standin", "transcriber", "utterances"]
