"""The feature registries of both node kinds: built once, one handler per message type, one
feature per name."""

from __future__ import annotations

from typing import ClassVar

import pytest

from core_region.features import Feature as CoreFeature, Registry as CoreRegistry
from edge_node.features import Feature as EdgeFeature, Registry as EdgeRegistry
from shared.protocol import Join, Message, Moves, Snapshot, Suggest


class _EdgeA(EdgeFeature):
    name = "a"
    client_messages: ClassVar[tuple[type[Message], ...]] = (Suggest,)
    link_messages = (Snapshot,)
    has_data = True

    def __init__(self) -> None:  # no node: the registry alone
        pass


class _EdgeB(EdgeFeature):
    name = "b"
    client_messages: ClassVar[tuple[type[Message], ...]] = (Join,)

    def __init__(self) -> None:
        pass

    def client_active(self, conn: int, now: float) -> None:
        pass


def test_the_edge_registry_maps_each_message_type_to_its_feature() -> None:
    a, b = _EdgeA(), _EdgeB()
    registry = EdgeRegistry([a, b])
    assert registry.client == {Suggest: a, Join: b}
    assert registry.link == {Snapshot: a}
    assert registry.with_data == [a]
    assert registry.watchers == [b]  # only features that want every client message
    assert registry["b"] is b and list(registry) == [a, b]


def test_two_features_cannot_share_a_name_or_a_message() -> None:
    with pytest.raises(ValueError, match="named 'a'"):
        EdgeRegistry([_EdgeA(), _EdgeA()])

    class Thief(_EdgeB):
        name = "thief"
        client_messages = (Suggest,)

    with pytest.raises(ValueError, match="'suggest' is handled by both 'a' and 'thief'"):
        EdgeRegistry([_EdgeA(), Thief()])


class _CoreA(CoreFeature):
    name = "a"
    link_messages = (Moves,)
    has_data = True

    def __init__(self) -> None:
        pass

    @property
    def version(self) -> int:
        return 7


def test_the_core_registry_maps_link_messages_and_reports_versions() -> None:
    a = _CoreA()
    registry = CoreRegistry([a])
    assert registry.link == {Moves: a} and "a" in registry and "b" not in registry
    assert registry.versions() == {"a": 7}
    with pytest.raises(ValueError, match="'moves' is handled by both"):
        CoreRegistry([a, type("B", (_CoreA,), {"name": "b"})()])
