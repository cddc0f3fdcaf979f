from __future__ import annotations

from pathlib import Path

import pytest

from apipod.bootstrap.catalog_file import demo_catalog, load_catalog_file, parse_catalog, shortcut_catalog
from apipod.bootstrap.settings import ConfigError
from apipod.domain.catalog import UpstreamKind
from apipod.domain.quota import WindowUnit

EXAMPLE = """
[[providers]]
name = "openai"
type = "openai"
base_url = "https://api.openai.com/v1"
api_keys = ["${OPENAI_API_KEY}", "sk-second"]
timeout = { connect = 3, read = 120 }

[[providers]]
name = "groq"
type = "groq"
api_keys = ["gsk"]

[[providers]]
name = "local"
type = "mock"
delay_ms = 5

[[models]]
name = "mini"
provider = "openai"
upstream_model = "gpt-4o-mini"
rpm = 500
tpm = 200000
rpd = 10000
max_concurrency = 10

[[models]]
name = "echo"
provider = "local"

[[plans]]
name = "cursor-pro-sonnet"
routes = [{ model = "mini", weight = 70 }, { model = "echo", weight = 30 }]
aliases = [{ name = "gpt-4o-mini", routes = [{ model = "mini", weight = 1 }] }]
budgets = [
  { window = "day", tokens = 2000000 },
  { window = "month", requests = 50000 },
  { window = { hours = 5 }, tokens = 9 },
]
rpm = 60
max_concurrency = 4
"""


def test_the_documented_shape_parses() -> None:
    catalog = parse_catalog(__import__("tomllib").loads(EXAMPLE), {"OPENAI_API_KEY": "sk-first"})
    openai, groq, local = catalog.upstreams
    assert openai.kind is UpstreamKind.OPENAI
    assert [a.secret for a in openai.accounts] == ["sk-first", "sk-second"]
    assert (openai.timeouts.connect, openai.timeouts.read) == (3.0, 120.0)
    assert groq.kind is UpstreamKind.OPENAI  # the original's alias
    assert groq.base_url == "https://api.openai.com/v1"
    assert local.options == {"delay_ms": 5}
    mini, echo = catalog.models
    assert (mini.limits.rpm, mini.limits.tpm, mini.limits.rpd, mini.limits.max_concurrency) == (500, 200000, 10000, 10)
    assert echo.upstream_model == "echo"
    [plan] = catalog.plans
    assert [(r.model, r.weight) for r in plan.routes] == [("mini", 70.0), ("echo", 30.0)]
    assert plan.alias("gpt-4o-mini") is not None
    assert [b.window.unit for b in plan.budgets] == [WindowUnit.DAY, WindowUnit.MONTH, WindowUnit.HOURS]
    assert plan.budgets[2].window.hours == 5
    assert (plan.rpm, plan.max_concurrency) == (60, 4)
    assert "sk-first" not in repr(openai)


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        ('[[providers]]\nname = "x"\ntype = "openai"\napi_key = ["k"]\n', "api_key"),
        ('[[providers]]\nname = "x"\ntype = "mock"\napi_keys = ["k"]\n', "api_keys"),
        ('[[providers]]\nname = "x"\ntype = "nope"\n', "unknown type"),
        ('[[models]]\nname = "m"\nprovider = "ghost"\n', "unknown provider 'ghost'"),
        ('[[models]]\nname = "m"\nprovider = "p"\nrpm = -1\n[[providers]]\nname = "p"\ntype = "mock"\n', "rpm"),
        ('[[plans]]\nname = "p"\nroutes = []\n', "routes"),
        ('[[plans]]\nname = "p"\nroutes = [{ model = "ghost" }]\n', "unknown model 'ghost'"),
        (
            '[[plans]]\nname = "p"\nroutes = [{ model = "m" }]\nbudgets = [{ window = "fortnight", tokens = 1 }]\n'
            '[[models]]\nname = "m"\nprovider = "p"\n[[providers]]\nname = "p"\ntype = "mock"\n',
            "fortnight",
        ),
        ("[[keys]]\nname = 'x'\n", "keys"),
        ('[[providers]]\nname = "x"\ntype = "openai"\napi_keys = ["${UNSET_VARIABLE}"]\n', "UNSET_VARIABLE"),
    ],
)
def test_mistakes_are_named(document: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment.replace("[", r"\[").replace("$", r"\$")):
        parse_catalog(__import__("tomllib").loads(document), {})


def test_a_bad_file_is_a_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "c.toml"
    bad.write_text("[[providers]\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_catalog_file(bad, {})
    with pytest.raises(ConfigError, match="cannot read"):
        load_catalog_file(tmp_path / "missing.toml", {})


def test_demo_and_shortcuts() -> None:
    demo = demo_catalog()
    assert [p.name for p in demo.plans] == ["demo"]
    assert demo.upstreams[0].kind is UpstreamKind.MOCK
    shortcuts = shortcut_catalog(
        {"OPENAI_API_KEY": "sk", "GOOGLE_AI_STUDIO_KEY": "g", "ANTIGRAVITY_URL": "http://proxy", "ANTIGRAVITY_KEY": "a"}
    )
    assert [u.name for u in shortcuts.upstreams] == ["openai", "google_ai_studio", "antigravity"]
    assert [u.kind for u in shortcuts.upstreams] == [
        UpstreamKind.OPENAI,
        UpstreamKind.GOOGLE_AI_STUDIO,
        UpstreamKind.ANTHROPIC,
    ]
    assert [p.name for p in shortcuts.plans] == ["openai", "google_ai_studio", "antigravity"]
    assert shortcut_catalog({"ANTIGRAVITY_URL": "http://proxy"}).upstreams == ()


def test_the_readme_catalog_example_loads(tmp_path: Path) -> None:
    """The README's catalog is what operators copy first: it must load as it stands."""
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    block = readme.split("### The catalog", 1)[1].split("```toml", 1)[1].split("```", 1)[0]
    path = tmp_path / "catalog.toml"
    path.write_text(block)
    catalog = load_catalog_file(path, {"OPENAI_API_KEY": "sk-test"})
    assert [p.name for p in catalog.plans] == ["cursor-pro-sonnet"]
    assert {m.name for m in catalog.models} == {"mini", "big"}
