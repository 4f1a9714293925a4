"""Settings from the environment: parsing, precedence, validation, and the dev token."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

import pytest

from core_region.settings import CoreSettings
from edge_node.settings import EdgeSettings
from shared.config import (
    DEV_TOKEN,
    ConfigError,
    describe,
    from_environ,
    is_loopback,
    resolve_token,
    setting,
)
from shared.settings import NodeSettings

EDGE_ENV = {"LIGHTCONE_CORE_URL": "http://127.0.0.1:8081"}


@dataclass(frozen=True)
class _FallbackInt:
    """A one-field settings class whose int falls back to FLY_REGION (for error naming)."""

    n: int = setting("LIGHTCONE_N", 1, "A number.", fallback="FLY_REGION")


def test_defaults_apply_with_an_empty_environment() -> None:
    """No variable set: every field has its declared default."""
    core = from_environ(CoreSettings, {})
    assert core == CoreSettings()
    assert core.port == 8081
    assert core.corpus is None
    assert core.data_dir == Path("lightcone-data")


def test_ints_floats_and_strings_are_parsed() -> None:
    """Each value is converted to its field's type."""
    core = from_environ(
        CoreSettings,
        {
            "LIGHTCONE_PORT": "9000",
            "LIGHTCONE_HEARTBEAT_S": "0.5",
            "LIGHTCONE_REGION": "ams",
            "LIGHTCONE_SEARCH_BOOST": " 7 ",
        },
    )
    assert (core.port, core.heartbeat_s, core.region, core.search_boost) == (9000, 0.5, "ams", 7)


def test_paths_are_parsed() -> None:
    """Path fields become Path objects, optional ones too."""
    core = from_environ(
        CoreSettings, {"LIGHTCONE_DATA_DIR": "/var/lc", "LIGHTCONE_CORPUS": "c.tsv.gz"}
    )
    assert core.data_dir == Path("/var/lc")
    assert core.corpus == Path("c.tsv.gz")


@pytest.mark.parametrize("raw", ["1", "true", "TRUE", "yes", "On", " true "])
def test_true_spellings(raw: str) -> None:
    """1/true/yes/on in any case and with spaces mean True."""
    env = {"LIGHTCONE_SUGGEST_STALE_OK": raw, "LIGHTCONE_CURSORS_STALE_OK": "false"}
    core = from_environ(CoreSettings, env)
    assert core.suggest_stale_ok is True
    assert core.cursors_stale_ok is False


@pytest.mark.parametrize("raw", ["0", "false", "False", "no", "OFF"])
def test_false_spellings(raw: str) -> None:
    """0/false/no/off in any case mean False."""
    assert from_environ(CoreSettings, {"LIGHTCONE_SUGGEST_STALE_OK": raw}).suggest_stale_ok is False


@pytest.mark.parametrize("raw", ["", "2", "maybe", "y", "tru"])
def test_other_bool_spellings_are_refused(raw: str) -> None:
    """Anything else is a ConfigError naming the variable and the value."""
    with pytest.raises(ConfigError) as info:
        from_environ(CoreSettings, {"LIGHTCONE_SUGGEST_STALE_OK": raw})
    message = str(info.value)
    assert "'LIGHTCONE_SUGGEST_STALE_OK'" in message
    assert f"{raw!r}" in message
    assert "bool" in message


def test_empty_optional_value_means_none() -> None:
    """An empty string for an optional setting is None, not an empty Path or token."""
    core = from_environ(CoreSettings, {"LIGHTCONE_CORPUS": "", "LIGHTCONE_LINK_TOKEN": ""})
    assert core.corpus is None
    assert core.link_token is None


def test_optional_token_is_read() -> None:
    """A set token is kept as is."""
    core = from_environ(CoreSettings, {"LIGHTCONE_ADMIN_TOKEN": "s3cret"})
    assert core.admin_token == "s3cret"


@pytest.mark.parametrize(
    ("env", "value"),
    [
        ("LIGHTCONE_PORT", "80a"),
        ("LIGHTCONE_PORT", "8e3"),
        ("LIGHTCONE_PORT", ""),
        ("LIGHTCONE_HEARTBEAT_S", "fast"),
        ("LIGHTCONE_MAX_LIMIT", "2.5"),
    ],
)
def test_unparsable_value_names_the_variable(env: str, value: str) -> None:
    """A value that does not parse is a ConfigError with the variable and the value."""
    with pytest.raises(ConfigError) as info:
        from_environ(CoreSettings, {env: value})
    assert f"Config {env!r} has value {value!r}" in str(info.value)


def test_overrides_win_over_the_environment() -> None:
    """Command-line flags (overrides) beat the environment; None overrides are ignored."""
    env = {"LIGHTCONE_PORT": "9000", "LIGHTCONE_HOST": "0.0.0.0", "LIGHTCONE_REGION": "ams"}
    core = from_environ(CoreSettings, env, port=7000, host=None, data_dir=Path("/x"))
    assert core.port == 7000
    assert core.host == "0.0.0.0"
    assert core.region == "ams"
    assert core.data_dir == Path("/x")


def test_override_is_not_parsed_from_a_bad_environment_value() -> None:
    """An override replaces the variable entirely, so its bad value does not matter."""
    assert from_environ(CoreSettings, {"LIGHTCONE_PORT": "nope"}, port=1).port == 1


def test_fly_region_is_the_fallback_region() -> None:
    """Without LIGHTCONE_REGION, FLY_REGION gives the region; LIGHTCONE_REGION wins over it."""
    assert from_environ(CoreSettings, {"FLY_REGION": "syd"}).region == "syd"
    both = {"FLY_REGION": "syd", "LIGHTCONE_REGION": "ams"}
    assert from_environ(CoreSettings, both).region == "ams"
    edge = from_environ(EdgeSettings, {**EDGE_ENV, "FLY_REGION": "gru"})
    assert edge.region == "gru"


def test_fallback_variable_is_named_in_its_errors() -> None:
    """A bad value read from the fallback names the fallback variable."""
    with pytest.raises(ConfigError, match="'FLY_REGION'"):
        from_environ(_FallbackInt, {"FLY_REGION": "x"})


# --- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize("port", ["-1", "65536", "100000"])
def test_port_out_of_range_is_refused(port: str) -> None:
    """Ports outside 0..65535 are refused for both processes."""
    with pytest.raises(ConfigError, match="'LIGHTCONE_PORT' must be 0..65535"):
        from_environ(CoreSettings, {"LIGHTCONE_PORT": port})
    with pytest.raises(ConfigError, match="'LIGHTCONE_PORT' must be 0..65535"):
        from_environ(EdgeSettings, {**EDGE_ENV, "LIGHTCONE_PORT": port})


@pytest.mark.parametrize("port", ["0", "65535"])
def test_port_bounds_are_accepted(port: str) -> None:
    """0 (any free port) and 65535 are valid."""
    assert from_environ(CoreSettings, {"LIGHTCONE_PORT": port}).port == int(port)


@pytest.mark.parametrize(("heartbeat", "timeout"), [("1", "1"), ("2", "1.5")])
def test_link_timeout_must_exceed_heartbeat(heartbeat: str, timeout: str) -> None:
    """A link timeout not longer than the heartbeat interval is refused on both sides."""
    env = {"LIGHTCONE_HEARTBEAT_S": heartbeat, "LIGHTCONE_LINK_TIMEOUT_S": timeout}
    with pytest.raises(ConfigError, match="'LIGHTCONE_LINK_TIMEOUT_S' must exceed"):
        from_environ(CoreSettings, env)
    with pytest.raises(ConfigError, match="'LIGHTCONE_LINK_TIMEOUT_S' must exceed"):
        from_environ(EdgeSettings, {**EDGE_ENV, **env})


@pytest.mark.parametrize(
    ("env", "value"),
    [
        ("LIGHTCONE_SEARCH_BOOST", "0"),
        ("LIGHTCONE_MAX_LIMIT", "-1"),
        ("LIGHTCONE_HOT_THRESHOLD", "0"),
        ("LIGHTCONE_COMPACT_AFTER", "0"),
        ("LIGHTCONE_HEARTBEAT_S", "0"),
    ],
)
def test_non_positive_core_settings_are_refused(env: str, value: str) -> None:
    """Settings that must be positive refuse 0 and negatives, naming the field."""
    with pytest.raises(ConfigError, match="must be positive"):
        from_environ(CoreSettings, {env: value})


def test_negative_publish_delay_is_refused() -> None:
    """The publish delay may be 0 but not negative."""
    assert from_environ(CoreSettings, {"LIGHTCONE_PUBLISH_DELAY_MS": "0"}).publish_delay_ms == 0
    with pytest.raises(ConfigError, match="LIGHTCONE_PUBLISH_DELAY_MS"):
        from_environ(CoreSettings, {"LIGHTCONE_PUBLISH_DELAY_MS": "-1"})


def test_nan_heartbeat_is_refused() -> None:
    """A heartbeat interval of NaN is not a positive number and is refused."""
    with pytest.raises(ConfigError):
        from_environ(CoreSettings, {"LIGHTCONE_HEARTBEAT_S": "nan"})


def test_edge_needs_a_core_url() -> None:
    """The edge refuses to start without LIGHTCONE_CORE_URL."""
    with pytest.raises(ConfigError, match="'LIGHTCONE_CORE_URL' must be an http"):
        from_environ(EdgeSettings, {})


@pytest.mark.parametrize("url", ["127.0.0.1:8081", "ftp://core", "core.internal", "HTTP//x"])
def test_edge_refuses_a_core_url_without_a_web_scheme(url: str) -> None:
    """The core URL must start with http(s):// (or ws(s)://); the error shows the value."""
    with pytest.raises(ConfigError) as info:
        from_environ(EdgeSettings, {"LIGHTCONE_CORE_URL": url})
    assert "'LIGHTCONE_CORE_URL'" in str(info.value)
    assert repr(url) in str(info.value)


def test_edge_refuses_non_positive_limits() -> None:
    """Edge settings that must be positive are checked too."""
    with pytest.raises(ConfigError, match="'outbox_max' must be positive"):
        from_environ(EdgeSettings, {**EDGE_ENV, "LIGHTCONE_OUTBOX_MAX": "0"})


@pytest.mark.parametrize(
    ("core_url", "link_url"),
    [
        ("http://127.0.0.1:8081", "ws://127.0.0.1:8081/link"),
        ("http://core:8081/", "ws://core:8081/link"),
        ("https://core.example.com", "wss://core.example.com/link"),
        ("https://core.example.com/base/", "wss://core.example.com/base/link"),
        ("ws://core:1", "ws://core:1/link"),
        ("wss://core", "wss://core/link"),
    ],
)
def test_link_url_is_the_websocket_form_of_the_core_url(core_url: str, link_url: str) -> None:
    """http becomes ws, https becomes wss, and /link is appended once."""
    settings = from_environ(EdgeSettings, {"LIGHTCONE_CORE_URL": core_url})
    assert [t.link_url for t in settings.core_targets] == [link_url]


def test_describe_lists_every_variable() -> None:
    """describe gives (field, env, default, help) for each setting, in field order."""
    rows = describe(CoreSettings)
    assert rows[0] == ("host", "LIGHTCONE_HOST", "127.0.0.1", "Address to listen on.")
    assert all(env.startswith("LIGHTCONE_") and text for _, env, _, text in rows)
    assert len({env for _, env, _, _ in rows}) == len(rows)


# --- tokens ----------------------------------------------------------------------------------


def test_configured_token_is_used_anywhere() -> None:
    """A set token is returned whatever the host."""
    assert resolve_token("t0k", env="LIGHTCONE_LINK_TOKEN", host="0.0.0.0") == "t0k"


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_missing_token_on_loopback_is_the_dev_token_with_a_warning(
    host: str, caplog: pytest.LogCaptureFixture
) -> None:
    """On loopback the development token is used and a warning names the variable."""
    with caplog.at_level(logging.WARNING, logger="shared.config"):
        assert resolve_token(None, env="LIGHTCONE_ADMIN_TOKEN", host=host) == DEV_TOKEN
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert "LIGHTCONE_ADMIN_TOKEN is not set" in caplog.records[0].getMessage()


def test_empty_token_counts_as_missing(caplog: pytest.LogCaptureFixture) -> None:
    """An empty token is not a token."""
    with caplog.at_level(logging.WARNING, logger="shared.config"):
        assert resolve_token("", env="LIGHTCONE_LINK_TOKEN", host="127.0.0.1") == DEV_TOKEN
    assert len(caplog.records) == 1


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.5", "core.internal", "", "fly-global"])
def test_missing_token_off_loopback_is_a_config_error(host: str) -> None:
    """Reachable from other machines and no token: refuse, naming the variable and the host."""
    with pytest.raises(ConfigError) as info:
        resolve_token(None, env="LIGHTCONE_LINK_TOKEN", host=host)
    message = str(info.value)
    assert "'LIGHTCONE_LINK_TOKEN' is missing" in message
    assert repr(host) in message


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("127.0.0.1", True),
        ("127.255.0.1", True),
        ("::1", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.1", False),
        ("LOCALHOST.example", False),
        ("[::1]", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    """Only localhost and loopback addresses count as loopback."""
    assert is_loopback(host) is loopback


# --- what both processes declare -------------------------------------------------------------


def test_settings_both_processes_read_are_declared_once() -> None:
    """A variable both processes read is a NodeSettings field in both, with its variable, help
    and fallback; none is declared by each process on its own."""
    base = {f.name: dict(f.metadata) for f in dataclasses.fields(NodeSettings)}
    for cls in (CoreSettings, EdgeSettings):
        fields = {f.name: dict(f.metadata) for f in dataclasses.fields(cls)}
        assert {name: fields[name] for name in base} == base
    core = {env for _, env, _, _ in describe(CoreSettings)}
    edge = {env for _, env, _, _ in describe(EdgeSettings)}
    assert core & edge == {metadata["env"] for metadata in base.values()}


def test_each_process_keeps_its_own_listener_defaults() -> None:
    """The core's port and connection caps differ from the edge's, as before."""
    core, edge = CoreSettings(), EdgeSettings(core_url="http://127.0.0.1:8081")
    assert (core.port, core.max_connections, core.max_client_connections) == (8081, 1024, 64)
    assert (edge.port, edge.max_connections, edge.max_client_connections) == (8080, 10000, 1024)


@pytest.mark.parametrize("cls", [CoreSettings, EdgeSettings])
def test_both_processes_validate_the_shared_settings(cls: type[NodeSettings]) -> None:
    """The base's checks run for either process."""
    environ = {"LIGHTCONE_CORE_URL": "http://127.0.0.1:8081", "LIGHTCONE_LINK_TIMEOUT_S": "0.5"}
    with pytest.raises(ConfigError, match="LIGHTCONE_LINK_TIMEOUT_S"):
        from_environ(cls, environ)
    with pytest.raises(ConfigError, match="presence_timeout_s"):
        from_environ(
            cls, {**environ, "LIGHTCONE_LINK_TIMEOUT_S": "5", "LIGHTCONE_PRESENCE_TIMEOUT_S": "0"}
        )
