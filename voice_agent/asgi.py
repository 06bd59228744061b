"""`voice_agent.asgi:app` for uvicorn and any ASGI server: the app on the environment's settings."""

from voice_agent.app import create_app
from voice_agent.settings import load_settings

app = create_app(load_settings())
