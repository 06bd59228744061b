"""The cascade calls' fixtures: the OpenAI stand-in with a fixture-aware transcriber."""

from tests.calls.conftest import standin, transcriber, utterances

__all__ = ["standin", "transcriber", "utterances"]
