"""The deployment files cannot rot: no Docker engine runs here, so they are parsed and held
to what the server needs (services, ports, health checks, a non-root image, and every
environment variable a setting the server knows, every setting in .env.example)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from voice_agent.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"
COMPOSE_ONLY_MARKER = "## Compose only"

SETTINGS = {name.upper() for name in Settings.model_fields}
_ASSIGNMENT = re.compile(r"^#?\s?([A-Z][A-Z0-9_]*)=(.*)$")
_INTERPOLATION = re.compile(r"\$\{([A-Z][A-Z0-9_]*)(?::?[-?][^}]*)?\}")


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def _env_example() -> tuple[dict[str, tuple[str, bool, str]], set[str]]:
    """(settings part: NAME -> (value, set, the comment above it), compose-only names)."""
    settings: dict[str, tuple[str, bool, str]] = {}
    compose_only: set[str] = set()
    in_compose_part = False
    comment = ""
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.startswith(COMPOSE_ONLY_MARKER):
            in_compose_part = True
            continue
        match = _ASSIGNMENT.match(line)
        if match:
            name, value = match.groups()
            if in_compose_part:
                compose_only.add(name)
            elif name not in settings:  # a commented example after a set line is no new name
                settings[name] = (value, not line.startswith("#"), comment)
            continue
        comment = line.lstrip("# ").strip() if line.startswith("#") else ""
    return settings, compose_only


def _environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def _add_hint(names: set[str]) -> str:
    return ", ".join(sorted(names))


# --- .env.example and the settings class ------------------------------------------------


def test_every_setting_is_in_env_example_with_a_comment() -> None:
    documented, _ = _env_example()
    missing = SETTINGS - set(documented)
    assert not missing, (
        f".env.example lacks settings of voice_agent/settings.py; add a commented line for"
        f" each of: {_add_hint(missing)}"
    )
    uncommented = {name for name, (_, _, comment) in documented.items() if not comment}
    assert not uncommented, f".env.example: write a comment line above {_add_hint(uncommented)}"


def test_every_name_in_env_example_is_a_known_setting() -> None:
    documented, _ = _env_example()
    unknown = set(documented) - SETTINGS
    assert not unknown, (
        f".env.example names settings voice_agent/settings.py does not have: "
        f"{_add_hint(unknown)} (add them to Settings, or move them under '{COMPOSE_ONLY_MARKER}')"
    )


def test_the_values_in_env_example_are_valid_settings() -> None:
    documented, _ = _env_example()
    values = {name.lower(): value for name, (value, is_set, _) in documented.items() if is_set}
    settings = load_settings(_env_file=None, **values)
    assert settings.drain_timeout_s == 30
    assert settings.log_format == "text"


def test_every_compose_only_name_is_used_by_compose() -> None:
    _, compose_only = _env_example()
    used = set(_INTERPOLATION.findall(COMPOSE.read_text()))
    assert compose_only, "the compose-only part of .env.example is empty"
    assert compose_only <= used, f"not used by docker-compose.yml: {compose_only - used}"


# --- docker-compose.yml ---------------------------------------------------------------


def test_compose_has_the_agent_postgres_and_redis_with_health_checks() -> None:
    services = _compose()["services"]
    for name in ("agent", "postgres", "redis"):
        service = services[name]
        assert "profiles" not in service, f"{name} must run by default"
        assert service.get("restart") in ("unless-stopped", "always"), name
        assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert "ping" in " ".join(services["redis"]["healthcheck"]["test"])
    volumes = set(_compose()["volumes"])
    for name, mount in (("postgres", "/var/lib/postgresql/data"), ("redis", "/data")):
        named = [v.split(":")[0] for v in services[name]["volumes"] if v.endswith(mount)]
        assert named and named[0] in volumes, f"{name} keeps no data in a named volume"


def test_compose_agent_port_health_dependencies_and_drain_grace() -> None:
    agent = _compose()["services"]["agent"]
    assert any(str(port).endswith(":8080") for port in agent["ports"])
    assert "/healthz" in " ".join(agent["healthcheck"]["test"])
    for needed in ("postgres", "redis"):
        assert agent["depends_on"][needed]["condition"] == "service_healthy"
    grace = int(str(agent["stop_grace_period"]).rstrip("s"))
    drain = float(Settings.model_fields["drain_timeout_s"].default)
    assert grace > drain + 10, "docker stop would SIGKILL calls still draining"
    command = agent["command"]
    assert command[:2] == ["voice-agent", "serve"] and "--workers" in command


def test_compose_agent_environment_names_only_known_settings() -> None:
    services = _compose()["services"]
    env = _environment(services["agent"])
    unknown = set(env) - SETTINGS
    assert not unknown, f"docker-compose.yml gives the agent unknown settings: {unknown}"
    database_url = env["DATABASE_URL"]
    assert database_url.startswith("postgresql://") and "@postgres:5432/" in database_url
    assert env["REDIS_URL"].startswith("redis://redis:6379")
    # What compose interpolates is either a setting or a documented compose-only name.
    _, compose_only = _env_example()
    referenced = set(_INTERPOLATION.findall(COMPOSE.read_text()))
    undocumented = referenced - SETTINGS - compose_only
    assert not undocumented, (
        f"docker-compose.yml reads {_add_hint(undocumented)}: add each to .env.example"
        f" (under '{COMPOSE_ONLY_MARKER}' unless it is a setting)"
    )


def test_compose_traefik_labels_route_tls_and_probe_readiness() -> None:
    labels = _compose()["services"]["agent"]["labels"]
    assert labels["traefik.enable"] == "true"
    routers = {k.split(".")[3] for k in labels if k.startswith("traefik.http.routers.")}
    assert len(routers) == 1
    router = f"traefik.http.routers.{routers.pop()}"
    assert labels[f"{router}.rule"].startswith("Host(")
    assert labels[f"{router}.entrypoints"] == "websecure"
    assert labels[f"{router}.tls"] == "true" and labels[f"{router}.tls.certresolver"]
    services = {k for k in labels if k.startswith("traefik.http.services.")}
    assert any(k.endswith("loadbalancer.server.port") and labels[k] == "8080" for k in services)
    assert any(k.endswith("healthcheck.path") and labels[k] == "/readyz" for k in services)


def test_compose_profiles_n8n_and_twenty_are_wired_to_the_agent() -> None:
    services = _compose()["services"]
    assert services["n8n"]["profiles"] == ["n8n"]
    assert services["twenty"]["profiles"] == ["twenty"]
    assert services["traefik"]["profiles"] == ["traefik"]
    n8n = _environment(services["n8n"])
    assert n8n["VOICE_AGENT_URL"] == "http://agent:8080"
    assert "LEAD_WEBHOOK_SECRET" in n8n["LEAD_WEBHOOK_SECRET"]
    assert "EVENTS_WEBHOOK_SECRET" in n8n["EVENTS_WEBHOOK_SECRET"]
    for name in ("n8n", "twenty"):
        assert services[name].get("healthcheck", {}).get("test"), name
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
    example = ENV_EXAMPLE.read_text()
    # The agent's settings point at the services by their compose names.
    assert "TWENTY_API_URL=http://twenty:3000" in example
    assert "EVENTS_WEBHOOK_URL=http://n8n:5678/" in example
    init = (ROOT / "deploy" / "postgres-init.sql").read_text()
    assert "CREATE DATABASE n8n" in init and "CREATE DATABASE twenty" in init


# --- Dockerfile -------------------------------------------------------------------------


def _instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def _final_stage() -> list[tuple[str, str]]:
    instructions = _instructions()
    last_from = max(i for i, (k, _) in enumerate(instructions) if k == "FROM")
    return instructions[last_from:]


def test_dockerfile_is_multi_stage_and_ships_no_build_tools() -> None:
    froms = [rest for keyword, rest in _instructions() if keyword == "FROM"]
    assert len(froms) >= 2 and all(" AS " in f.upper() for f in froms)
    assert all("slim" in f for f in froms)
    final = _final_stage()
    assert any(k == "COPY" and rest.startswith("--from=") for k, rest in final)
    assert not any(k == "RUN" and "build-essential" in rest for k, rest in final)


def test_dockerfile_installs_offline_models_and_the_fast_loop() -> None:
    runs = " ".join(rest for keyword, rest in _instructions() if keyword == "RUN")
    install = next(r for k, r in _instructions() if k == "RUN" and "pip install" in r)
    assert "[offline]" in install and "uvloop" in install and "httptools" in install
    assert "missing_offline_packages" in runs, "the build should fail without the models"
    env = " ".join(rest for keyword, rest in _final_stage() if keyword == "ENV")
    assert "HF_HUB_OFFLINE=1" in env


def test_dockerfile_runs_as_a_non_root_user() -> None:
    users = [rest for keyword, rest in _final_stage() if keyword == "USER"]
    assert users, "the image runs as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")


def test_dockerfile_health_check_port_and_command() -> None:
    final = dict(_final_stage())
    assert "/healthz" in final["HEALTHCHECK"] and "8080" in final["HEALTHCHECK"]
    assert "8080" in final["EXPOSE"].split()
    command = final["CMD"]
    argv = yaml.safe_load(command) if command.startswith("[") else shlex.split(command)
    assert argv[:2] == ["voice-agent", "serve"] and "0.0.0.0" in argv and "8080" in argv


@pytest.mark.parametrize("needle", ["docker compose build", "docker compose up", ".env.example"])
def test_readme_says_how_to_build_and_run(needle: str) -> None:
    assert needle in (ROOT / "README.md").read_text()


def test_grafana_dashboard_queries_only_metrics_the_server_exports() -> None:
    import json

    from voice_agent.metrics import Metrics

    exported: set[str] = set()
    for family in Metrics().registry.collect():
        # A labelled family has no sample before its first use: the names it will have.
        exported |= {family.name + suffix for suffix in ("", "_total", "_bucket", "_count")}
    dashboard = json.loads((ROOT / "docs" / "grafana-dashboard.json").read_text())
    names: set[str] = set()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            names |= set(re.findall(r"voice_agent_[a-z0-9_]+", target["expr"]))
    unknown = names - exported
    assert names and not unknown, f"the dashboard queries metrics nobody exports: {unknown}"
