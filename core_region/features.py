"""The seam between the core and its features.

A feature is one thing the core holds and pushes to edges (the suggestion catalog, the cursor
room directory, ...). It subclasses :class:`Feature` and declares, in one place:

* its ``name``: the key of its flag, of its version on the link, and of its part of
  ``/admin/status``; its default flag (:meth:`~Feature.default_level`) and the levels it
  supports (``levels``);
* the link messages from edges it handles (``link_messages``): the core dispatches each to its
  one feature by type, through a :class:`Registry` built once;
* its admin ``routes()`` (under ``/admin``, bearer-protected by the node);
* what it does when an edge links up (:meth:`~Feature.catch_up` for the frames that bring the
  edge's data to the head, :meth:`~Feature.edge_linked`) or goes away
  (:meth:`~Feature.edge_gone`), when its flag changes, and every heartbeat
  (:meth:`~Feature.tick`);
* whether it holds versioned data (``has_data``): then it takes versions from the one global
  sequence (the store's), sends changes when the node follows a mark (:meth:`~Feature.follow`),
  and reports ``version``: the last global version that changed it.

The core's app lists its features once (:data:`core_region.app.FEATURES`); nothing outside a
feature's own folder names it. docs/extending.md walks through adding one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar

from starlette.routing import BaseRoute

from shared.protocol import LEVELS, Level, Message

if TYPE_CHECKING:
    from core_region.node import CoreNode, EdgePeer


class Feature:
    """One feature of the core; subclasses override what they use."""

    name: ClassVar[str]
    link_messages: ClassVar[tuple[type[Message], ...]] = ()
    """Messages from edges this feature handles (:meth:`on_link`)."""
    has_data: ClassVar[bool] = False
    """Whether it sends edges versioned data (snapshots, deltas, ...)."""
    legacy_version: ClassVar[bool] = False
    """Whether ``version`` in the link's messages carried this feature's version before
    per-feature versions (one feature: suggestions); an edge from before them has only it."""
    levels: ClassVar[tuple[str, ...]] = LEVELS
    """The consistency levels its flag may take, documented with the feature
    (docs/protocol.md §8): ``PUT /admin/flags`` refuses others with 400 ``bad_flag``. Every
    level by default; a feature whose reads cannot be bounded or bookmarked declares fewer
    (cursors: strict and tolerant)."""

    def __init__(self, node: CoreNode) -> None:
        self.node = node
        self.level = self.default_level()

    def default_level(self) -> Level:
        """Its flag when the database holds none yet."""
        return Level()

    # --- its own life ----------------------------------------------------------------------

    async def prepare(self) -> None:
        """Before the node reads its epoch and head: seed data, check stored rules."""

    async def start(self) -> None:
        """Load its state (the store is open, the epoch and head known)."""

    task: ClassVar[str] = ""
    """The name of :meth:`run`'s task in logs and ``lightcone_task_crashes_total`` (default:
    ``<name>_run``)."""

    async def run(self) -> None:
        """A background task for the core's lifetime (supervised), if it needs one."""

    async def close(self) -> None:
        """Stop its background work."""

    def ready(self) -> bool:
        return True

    async def status(self) -> dict[str, Any]:
        """Its part of ``/admin/status``."""
        return {}

    def routes(self) -> list[BaseRoute]:
        """Its admin routes (wrap each endpoint with ``node.admin``)."""
        return []

    def openapi_paths(self) -> dict[str, Any]:
        return {}

    # --- data ------------------------------------------------------------------------------

    @property
    def version(self) -> int:
        """The last global version that changed it, as published."""
        return -1

    def publish(self) -> None:
        """Send what changed since the last publication to every edge (``node.broadcast``):
        for a feature that keeps its pending changes in memory (see :meth:`follow`)."""

    async def follow(self, after: int, marks: list[int]) -> None:
        """The node follows ``marks`` (versions that end a publication, in order, each after
        ``after`` and the one before): send what changed up to each.

        A feature whose changes are in the store reads them from there, so every core node
        sends the same (:mod:`core_region.suggest.feature`); the default publishes what this
        node applied in memory (:meth:`publish`), as a feature with storage of its own does.
        """
        self.publish()

    def catch_up(self, have: int, base: int | None = None) -> list[bytes]:
        """Frames that bring an edge holding ``have`` (-1: nothing) to the published head;
        ``base``: the version of the snapshot its data grew from, if it said
        (``hello.bases``)."""
        return []

    def epoch_changed(self) -> None:
        """The node adopted a new epoch: re-encode what an edge loads under it (it then
        sends every edge :meth:`catch_up` from nothing)."""

    # --- edges -----------------------------------------------------------------------------

    def edge_linked(self, peer: EdgePeer) -> None:
        """An edge's link came up (after its catch-up frames were queued)."""

    def edge_gone(self, peer: EdgePeer) -> None:
        """An edge's link ended (not called for a link a newer one replaced)."""

    async def on_link(self, peer: EdgePeer, message: Any) -> None:
        """Handle one of :attr:`link_messages` from ``peer``."""
        raise NotImplementedError

    def flag_changed(self, level: Level) -> None:
        """Its flag changed (``self.level`` holds it already)."""

    def tick(self, now: float) -> None:
        """Every heartbeat interval (``now`` is monotonic)."""


class Registry:
    """The features of one core, and who handles which link message: built once."""

    def __init__(self, features: Iterable[Feature]) -> None:
        self.features: dict[str, Feature] = {}
        self.link: dict[type[Message], Feature] = {}
        for feature in features:
            if feature.name in self.features:
                raise ValueError(f"two features are named {feature.name!r}")
            self.features[feature.name] = feature
            for cls in feature.link_messages:
                if cls in self.link:
                    raise ValueError(
                        f"{cls.TYPE!r} is handled by both {self.link[cls].name!r} and "
                        f"{feature.name!r}"
                    )
                self.link[cls] = feature
        self.with_data = [f for f in self.features.values() if f.has_data]

    def __iter__(self) -> Iterator[Feature]:
        return iter(self.features.values())

    def __getitem__(self, name: str) -> Feature:
        return self.features[name]

    def __contains__(self, name: object) -> bool:
        return name in self.features

    def versions(self) -> dict[str, int]:
        """Each data feature's published version (for heartbeats and ``synced``)."""
        return {f.name: f.version for f in self.with_data}
