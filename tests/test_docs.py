"""The documentation in ``docs/`` names everything an operator or a client can meet.

Each test collects names from the code itself (settings, message types, Prometheus metrics,
error codes, close codes) and fails with the list of those that ``docs/operations.md`` or
``docs/protocol.md`` does not mention, so adding one without documenting it breaks the build.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import pkgutil
import re
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from prometheus_client import CollectorRegistry

import shared.protocol
from core_region.metrics import CoreMetrics
from core_region.settings import CoreSettings
from edge_node.metrics import EdgeMetrics
from edge_node.settings import EdgeSettings
from shared.config import describe
from shared.errors import CloseCode, LightconeError

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PACKAGES = ("edge_node", "core_region", "shared")


@cache
def _doc(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def _mentions(text: str, name: str) -> bool:
    """``name`` appears as a whole token (not as part of a longer identifier)."""
    return re.search(rf"(?<![\w]){re.escape(name)}(?![\w])", text) is not None


def _missing(names: Iterable[str], text: str) -> list[str]:
    return sorted({n for n in names if not _mentions(text, n)})


# --- settings ------------------------------------------------------------------------------


def _setting_variables() -> set[str]:
    names: set[str] = set()
    for cls in (CoreSettings, EdgeSettings):
        names.update(env for _, env, _, _ in describe(cls))
        for f in dataclasses.fields(cls):
            fallback = f.metadata.get("fallback")
            if fallback:
                names.add(str(fallback))
    return names


def test_every_setting_is_in_operations() -> None:
    names = _setting_variables()
    assert "LIGHTCONE_OUTBOX_MAX" in names  # the collection itself works
    assert _missing(names, _doc("operations.md")) == []


def test_the_log_level_variable_is_in_operations() -> None:
    # Read by the command itself (shared/cli.py), not by a settings class.
    assert _mentions(_doc("operations.md"), "LIGHTCONE_LOG_LEVEL")


# --- messages ------------------------------------------------------------------------------


def _message_types() -> set[str]:
    types: set[str] = set()
    for value in vars(shared.protocol).values():
        if inspect.isclass(value) and dataclasses.is_dataclass(value):
            tag = getattr(value, "TYPE", None)
            if isinstance(tag, str):
                types.add(tag)
    return types


def test_every_message_type_has_a_json_example_in_protocol() -> None:
    types = _message_types()
    assert {"suggest", "hello", "delta", "search_acks"} <= types
    text = _doc("protocol.md")
    missing = sorted(t for t in types if not re.search(rf'"type"\s*:\s*"{re.escape(t)}"', text))
    assert missing == []


def test_both_subprotocols_are_in_protocol() -> None:
    text = _doc("protocol.md")
    for name in (shared.protocol.SUBPROTOCOL_MSGPACK, shared.protocol.SUBPROTOCOL_JSON):
        assert _mentions(text, name), name


# --- metrics -------------------------------------------------------------------------------


def _exposed_names(registry: CollectorRegistry) -> set[str]:
    """The name an operator queries: counters carry the ``_total`` suffix on the wire."""
    names: set[str] = set()
    for family in registry.collect():
        names.add(f"{family.name}_total" if family.type == "counter" else family.name)
    return names


def test_every_metric_is_in_operations() -> None:
    names = _exposed_names(CoreMetrics().registry) | _exposed_names(EdgeMetrics("x").registry)
    assert "lightcone_outbox_depth" in names
    assert _missing(names, _doc("operations.md")) == []


# --- error codes ---------------------------------------------------------------------------


def _source_files() -> Iterator[Path]:
    for package in PACKAGES:
        yield from sorted((ROOT / package).rglob("*.py"))


def _literal_codes(tree: ast.AST) -> set[str]:
    """``code="..."`` keyword arguments, and the code of ``Error(id, "...", text)`` calls."""
    codes: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        for keyword in node.keywords:
            if keyword.arg == "code" and isinstance(keyword.value, ast.Constant):
                if isinstance(keyword.value.value, str):
                    codes.add(keyword.value.value)
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        if name == "Error" and len(node.args) >= 2:
            arg = node.args[1]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                codes.add(arg.value)
    return codes


def _import_all() -> None:
    """Import every module of the packages so that every error subclass is defined."""
    for package in PACKAGES:
        module: ModuleType = importlib.import_module(package)
        for info in pkgutil.walk_packages(module.__path__, prefix=f"{package}."):
            importlib.import_module(info.name)


def _subclasses(cls: type[Any]) -> Iterator[type[Any]]:
    yield cls
    for sub in cls.__subclasses__():
        yield from _subclasses(sub)


def _error_codes() -> set[str]:
    codes: set[str] = set()
    for path in _source_files():
        codes |= _literal_codes(ast.parse(path.read_text(encoding="utf-8"), str(path)))
    _import_all()
    codes.update(cls.default_code for cls in _subclasses(LightconeError))
    return codes


def test_the_code_scan_finds_codes() -> None:
    tree = ast.parse('raise BadRequest("x", code="a")\npeer.send(encode(Error(None, "b", t)))')
    assert _literal_codes(tree) == {"a", "b"}


def test_every_error_code_is_in_protocol() -> None:
    codes = _error_codes()
    assert {"outbox_full", "bad_message", "room_full", "internal_error"} <= codes
    text = _doc("protocol.md")
    assert sorted(c for c in codes if f"`{c}`" not in text) == []


# --- close codes ---------------------------------------------------------------------------


def test_every_close_code_is_in_protocol() -> None:
    text = _doc("protocol.md")
    assert _missing((str(int(code)) for code in CloseCode), text) == []
