"""Driving the real coding-agent CLIs pinned in ``tests/clients`` (the Codex CLI, the Gemini CLI) against a running
apipod in front of the scripted fake upstreams.

Each run gets a throw-away HOME (the CLI's config, and nothing of the developer's), an environment holding only
what the CLI needs (no real provider keys, no proxies), its telemetry, update checks and retries off, stdin
closed and a 120 s time box; a failed run shows the CLI's output and apipod's log.

The CLIs come from ``npm ci --prefix tests/clients`` (``scripts/dev test`` runs it). Without Node.js or without
that install the tests are skipped with the reason, except under ``CI=true``, where that fails the run.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NoReturn

import attrs
import pytest

from tests.fakes.fake_gemini import FakeGemini
from tests.fakes.server import BackgroundServer
from tests.integration.harness import model, plan, provider
from tests.integration.http.core_support import Stack, start_stack

CLIENTS = Path(__file__).resolve().parents[2] / "clients"
TIMEOUT = 120.0
CLI_MODEL = "test-model"
"""The model name the CLIs ask for: unknown to both, as in the captures (the key's plan picks the upstream)."""
GM_UPSTREAM_MODEL = "gemini-up"


# -- finding the CLIs --------------------------------------------------------------------------------------------


PACKAGES = {"codex": "@openai/codex", "gemini": "@google/gemini-cli"}
"""The npm package behind each CLI (tests/clients/package.json)."""


def cli_or_skip(name: str) -> Path:
    """The installed ``tests/clients/node_modules/.bin/<name>``; skips (fails under ``CI=true``) without Node.js,
    with a Node.js older than the package's ``engines.node``, or without the install the lock file pins."""
    node = shutil.which("node")
    if node is None or shutil.which("npm") is None:
        _missing(f"Node.js/npm are not on PATH (they run the {name} CLI; scripts/dev test installs them)")
    package = PACKAGES[name]
    path = CLIENTS / "node_modules" / ".bin" / name
    manifest = CLIENTS / "node_modules" / package / "package.json"
    if not path.exists() or not manifest.exists():
        _missing(f"{path} is missing: run `npm ci --prefix tests/clients` (scripts/dev test does)")
    installed = json.loads(manifest.read_text())
    pinned = json.loads((CLIENTS / "package-lock.json").read_text())["packages"][f"node_modules/{package}"]["version"]
    if installed["version"] != pinned:
        _missing(f"{package} {installed['version']} is installed, the lock pins {pinned}: run npm ci again")
    needed = _major(installed.get("engines", {}).get("node", ""))
    found = _major(subprocess.run([node, "--version"], capture_output=True, text=True, check=False).stdout)
    if found < needed:
        _missing(f"{package} needs Node.js >= {needed}; {node} is version {found}")
    return path


def _major(version: str) -> int:
    """The first number of ``v20.20.2`` or ``>=20``; 0 when there is none."""
    found = re.search(r"\d+", version)
    return int(found.group()) if found else 0


def _missing(reason: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI=true requires the client CLIs")
    pytest.skip(reason)


# -- running one ----------------------------------------------------------------------------------------------------


@attrs.frozen
class CliRun:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str

    def report(self) -> str:
        return f"$ {' '.join(self.argv)}\nexit {self.returncode}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


def base_env(home: Path, **extra: str) -> dict[str, str]:
    """A clean environment under ``home``: PATH (for node and the tools the agent runs), locale, no colour."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        "TMPDIR": str(home / "tmp"),
        "LANG": "C.UTF-8",
        "TERM": "dumb",
        "NO_COLOR": "1",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
    (home / "tmp").mkdir(parents=True, exist_ok=True)
    env.update(extra)
    return env


def run_cli(argv: list[str], *, env: Mapping[str, str], cwd: Path, timeout: float = TIMEOUT) -> CliRun:
    """Runs the CLI with stdin closed, in its own process group (killed whole on timeout: both CLIs start
    helper processes that would otherwise keep the output pipes open)."""
    process = subprocess.Popen(
        argv,
        env=dict(env),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(process.pid)
        out, err = process.communicate()
        run = CliRun(argv, -9, out.decode(errors="replace"), err.decode(errors="replace"))
        pytest.fail(f"{Path(argv[0]).name} did not finish within {timeout:.0f} s\n{run.report()}")
    _kill_group(process.pid)  # a helper the CLI left behind must not outlive the test
    return CliRun(argv, process.returncode, out.decode(errors="replace"), err.decode(errors="replace"))


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def expect_success(run: CliRun, stack: ClientsStack) -> None:
    """Exit 0, or a failure showing the CLI's output and the tail of apipod's log."""
    if run.returncode != 0:
        pytest.fail(f"{run.report()}\n--- apipod log (tail)\n{stack.core.gateway.log()[-4000:]}")


# -- the Codex CLI --------------------------------------------------------------------------------------------------

CODEX_KEY_ENV = "APIPOD_KEY"


def codex_config(gateway_url: str) -> str:
    """``config.toml``: apipod as a Responses-API provider; retries off so a failure shows at once rather than
    after Codex's 30 attempts; no update check, analytics, feedback or history files."""
    return f"""\
model = "{CLI_MODEL}"
model_provider = "apipod"
check_for_update_on_startup = false

[model_providers.apipod]
name = "apipod"
base_url = "{gateway_url}/v1"
env_key = "{CODEX_KEY_ENV}"
wire_api = "responses"
request_max_retries = 0
stream_max_retries = 0
stream_idle_timeout_ms = 60000

[analytics]
enabled = false

[feedback]
enabled = false

[history]
persistence = "none"

[features]
plugins = false
remote_plugin = false
apps = false
in_app_updates = false
"""


def run_codex(stack: ClientsStack, key: str, prompt: str, *, home: Path, workdir: Path) -> CliRun:
    """``codex exec`` in ``workdir`` (not a git repository), no approvals, no sandbox: the test's temp dir is the
    only thing the scripted commands touch."""
    codex = cli_or_skip("codex")
    codex_home = home / ".codex"
    codex_home.mkdir(parents=True, exist_ok=True)
    (codex_home / "config.toml").write_text(codex_config(stack.url))
    env = base_env(home, CODEX_HOME=str(codex_home), **{CODEX_KEY_ENV: key})
    argv = [
        str(codex),
        "exec",
        "--skip-git-repo-check",
        "--dangerously-bypass-approvals-and-sandbox",
        "--cd",
        str(workdir),
        prompt,
    ]
    return run_cli(argv, env=env, cwd=workdir)


# -- the Gemini CLI -------------------------------------------------------------------------------------------------

GEMINI_SETTINGS: dict[str, Any] = {
    "security": {"auth": {"selectedType": "gemini-api-key"}},
    # One attempt per turn: an error shows at once instead of after minutes of backoff (10 attempts by default).
    "general": {
        "enableAutoUpdate": False,
        "enableAutoUpdateNotification": False,
        "maxAttempts": 1,
        "retryFetchErrors": False,
    },
    "privacy": {"usageStatisticsEnabled": False},
    "telemetry": {"enabled": False},
}


def run_gemini(stack: ClientsStack, key: str, prompt: str, *, home: Path, workdir: Path) -> CliRun:
    """``gemini -p <prompt> -m test-model`` in ``workdir`` (a trusted workspace), API-key auth against apipod."""
    gemini = cli_or_skip("gemini")
    settings = home / ".gemini" / "settings.json"
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text(json.dumps(GEMINI_SETTINGS))
    env = base_env(
        home,
        GOOGLE_GEMINI_BASE_URL=stack.url,
        GEMINI_API_KEY=key,
        GEMINI_CLI_TRUST_WORKSPACE="true",
        GEMINI_TELEMETRY_ENABLED="false",
    )
    return run_cli([str(gemini), "-p", prompt, "-m", CLI_MODEL], env=env, cwd=workdir)


# -- the stack ------------------------------------------------------------------------------------------------------


@attrs.define
class ClientsStack:
    """apipod before three fakes: plans ``oa-plan`` (OpenAI chat), ``an-plan`` (Anthropic), ``gm-plan``
    (Google AI Studio)."""

    core: Stack
    gm: FakeGemini

    @property
    def url(self) -> str:
        return self.core.url

    def reset(self) -> None:
        self.core.reset()
        self.gm.replies.clear()
        self.gm.requests.clear()
        self.gm.outcomes.clear()


def start_clients_stack(tmp: Path) -> Iterator[ClientsStack]:
    """A generator for a module-scoped fixture (see ``core_support.start_stack``), plus the Gemini fake."""
    gm = FakeGemini()
    server = BackgroundServer(gm)
    gm_url = server.start()

    def extra(oa_url: str, an_url: str) -> dict[str, list[str]]:
        return {
            "providers": [provider("gm", "google_ai_studio", gm_url)],
            "models": [model("gem", "gm", GM_UPSTREAM_MODEL)],
            "plans": [plan("gm-plan", {"gem": 1})],
        }

    try:
        for core in start_stack(tmp, extra=extra):
            yield ClientsStack(core=core, gm=gm)
    finally:
        server.stop()
