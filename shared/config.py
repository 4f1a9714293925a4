"""Settings: frozen dataclasses read once from the environment, validated at start-up.

Each field of a settings class declares its environment variable and help text with
:func:`setting`. :func:`from_environ` reads them (command-line flags, passed as ``overrides``,
win over the environment, which wins over the default). Nothing else reads ``os.environ``;
``docs/operations.md`` lists every setting, and a test keeps it that way.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import math
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")

DEV_TOKEN = "lightcone-dev-token"
"""Used for both tokens when none is set and every listener is on loopback."""


class ConfigError(Exception):
    """A setting is missing or invalid; the message names the variable and the fix."""


def setting(env: str, default: Any, help: str, *, fallback: str | None = None) -> Any:
    """Declare a settings field read from ``env`` (or ``fallback``, e.g. a FLY_ variable)."""
    return dataclasses.field(
        default=default, metadata={"env": env, "help": help, "fallback": fallback}
    )


def from_environ(cls: type[T], environ: Mapping[str, str], **overrides: Any) -> T:
    """Build ``cls`` from ``environ``; ``overrides`` that are not ``None`` win.

    Raises:
        ConfigError: if a value cannot be parsed or fails the class's validation.
    """
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if overrides.get(f.name) is not None:
            values[f.name] = overrides[f.name]
            continue
        env, fallback = f.metadata["env"], f.metadata["fallback"]
        raw = environ.get(env)
        source = env
        if raw is None and fallback:
            raw, source = environ.get(fallback), fallback
        if raw is not None:
            values[f.name] = _cast(raw, hints[f.name], source)
    try:
        return cls(**values)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _cast(raw: str, tp: Any, env: str) -> Any:
    args = typing.get_args(tp)
    if typing.get_origin(tp) is types.UnionType:
        if raw == "":
            return None
        tp = next(a for a in args if a is not type(None))
    try:
        if tp is bool:
            lowered = raw.strip().lower()
            if lowered in {"1", "true", "yes", "on"}:
                return True
            if lowered in {"0", "false", "no", "off"}:
                return False
            raise ValueError(raw)
        value = tp(raw)
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(raw)
        return value
    except ValueError:
        expected = getattr(tp, "__name__", str(tp))
        raise ConfigError(
            f"Config {env!r} has value {raw!r}, which is not a valid {expected}."
        ) from None


def positive(settings: object, *names: str) -> None:
    """Validation helper: each named field must be > 0."""
    for name in names:
        value = getattr(settings, name)
        if value <= 0:
            raise ValueError(f"Setting {name!r} must be positive, got {value!r}.")


def describe(cls: type[Any]) -> list[tuple[str, str, Any, str]]:
    """``(field, env, default, help)`` for every setting of ``cls``, for docs and ``--help``."""
    return [
        (f.name, f.metadata["env"], f.default, f.metadata["help"]) for f in dataclasses.fields(cls)
    ]


def is_loopback(host: str) -> bool:
    """True when ``host`` only listens on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_token(value: str | None, *, env: str, host: str) -> str:
    """The token to use: the configured one, or the development token on loopback only.

    Raises:
        ConfigError: if no token is set and ``host`` is reachable from other machines.
    """
    if value:
        return value
    if not is_loopback(host):
        raise ConfigError(
            f"Config {env!r} is missing. Set it (for example with 'fly secrets set {env}=...') "
            f"or listen on loopback only: host {host!r} is reachable from other machines."
        )
    logger.warning("%s is not set: using the development token (loopback only)", env)
    return DEV_TOKEN
