"""The seam between the edge and its features.

A feature is one thing an edge serves (suggestions, cursor rooms, ...). It subclasses
:class:`Feature` and declares, in one place:

* its ``name``: the key of its flag (``PUT /admin/flags/{name}`` on the core), of its version on
  the link and of its part of ``/status``;
* the client messages it answers (``client_messages``) and the link messages from the core it
  handles (``link_messages``): the edge dispatches each decoded message to its one feature by
  type, through a :class:`Registry` built once;
* its HTTP ``routes()``;
* what it does when the link comes up (:meth:`~Feature.link_up`, e.g. announce its state, start
  a sender for the session) or goes down (:meth:`~Feature.link_down`), and when its flag
  changes (:meth:`~Feature.flag_changed`);
* whether it holds data from the core (``has_data``): then the link tracks its own version and
  age (:class:`edge_node.freshness.Freshness`), carried per feature in ``hello``, heartbeats,
  ``synced`` and ``resync``; a feature without data reports the link's freshness.

The edge's app lists its features once (:data:`edge_node.app.FEATURES`); nothing outside a
feature's own folder names it. docs/extending.md walks through adding one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, ClassVar

from starlette.routing import BaseRoute

from shared.protocol import Level, Message

if TYPE_CHECKING:
    from edge_node.clients import ConnId
    from edge_node.link import Session
    from edge_node.node import EdgeNode
    from edge_node.ws import ClientSocket

ClientHandler = Callable[["ClientSocket", Any, float], "bytes | str | None"]
"""Answers one client message: ``(client, message, now)``, as :meth:`Feature.on_client`."""


class Feature:
    """One feature of an edge; subclasses override what they use (all hooks default to nothing).

    ``node`` gives it the edge's settings, metrics, link (:class:`edge_node.link.Link`) and
    client connections (:class:`edge_node.clients.Clients`).
    """

    name: ClassVar[str]
    client_messages: ClassVar[tuple[type[Message], ...]] = ()
    """Messages from clients this feature answers (:meth:`on_client`)."""
    link_messages: ClassVar[tuple[type[Message], ...]] = ()
    """Messages from the core this feature handles (:meth:`on_link`)."""
    has_data: ClassVar[bool] = False
    """Whether the core sends it versioned data (then the link tracks its freshness)."""

    def __init__(self, node: EdgeNode) -> None:
        self.node = node
        self.level = Level()

    # --- what it serves ------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        """Its HTTP routes (each documented in :meth:`openapi_paths`)."""
        return []

    def openapi_paths(self) -> dict[str, Any]:
        """The OpenAPI ``paths`` entries of :meth:`routes`."""
        return {}

    def on_client(self, client: ClientSocket, message: Any, now: float) -> bytes | str | None:
        """Answer one of :attr:`client_messages`: return a frame to send at once, or queue
        answers on ``client`` (``client.send``, ``client.run``), or raise a
        :class:`~shared.errors.LightconeError` to answer with an error."""
        raise NotImplementedError

    def client_handlers(self) -> dict[type[Message], ClientHandler]:
        """The handler of each of :attr:`client_messages` (default: :meth:`on_client` for
        all); a feature may name one method per type instead (no dispatch of its own)."""
        return dict.fromkeys(self.client_messages, self.on_client)

    def error_room(self, message: Any) -> str | None:
        """The room an error answering ``message`` names (see ``Error.room``), if any."""
        return None

    def over_rate(self, client: ClientSocket, message: Any) -> bool:
        """``message`` came over the client's rate: return whether to answer it with an
        error (``False``: drop it quietly, as for moves)."""
        return True

    # --- client connections --------------------------------------------------------------

    def client_active(self, conn: ConnId, now: float) -> None:
        """Any message arrived from ``conn`` (it is alive)."""

    def client_caught_up(self, conn: ConnId) -> None:
        """``conn`` missed frames that were dropped while it was slow, and has caught up."""

    def client_gone(self, conn: ConnId) -> None:
        """``conn`` disconnected."""

    # --- the link --------------------------------------------------------------------------

    async def on_link(self, message: Any) -> None:
        """Handle one of :attr:`link_messages` from the core."""
        raise NotImplementedError

    def hello_version(self) -> int:
        """The version of its data to announce in ``hello`` (features with data)."""
        return -1

    def hello_base(self) -> int | None:
        """For data that grows from a snapshot: that snapshot's version (``hello.bases``)."""
        return None

    def link_up(self, session: Session) -> None:
        """The link came up (right after ``hello``): post what the core must hear first,
        start the senders of this session (:meth:`Session.spawn`)."""

    def link_down(self) -> None:
        """The link went down (the session's senders are stopped)."""

    def announce(self) -> list[Message]:
        """What tells the core everything again, after some of this feature's posted
        messages were dropped (:meth:`Session.post`)."""
        return []

    def flag_changed(self, level: Level) -> None:
        """The core sent this feature's flag (at every link up, and when it changes)."""

    # --- its own life --------------------------------------------------------------------

    task: ClassVar[str] = ""
    """The name of :meth:`run`'s task in logs and ``lightcone_task_crashes_total`` (default:
    ``<name>_run``)."""

    async def run(self) -> None:
        """A background task for the edge's lifetime (supervised), if it needs one."""

    def ready(self) -> bool:
        """Whether it can serve (``/readyz`` waits for every feature)."""
        return True

    def status(self) -> dict[str, Any]:
        """Its part of ``/status`` (beyond level, version and age, which the edge adds)."""
        return {}


class Registry:
    """The features of one edge, and who handles which message: built once, then read."""

    def __init__(self, features: Iterable[Feature]) -> None:
        self.features: dict[str, Feature] = {}
        self.client: dict[type[Message], Feature] = {}
        self.handlers: dict[type[Message], ClientHandler] = {}
        """The handler of each client message type (the hot path reads only this)."""
        self.link: dict[type[Message], Feature] = {}
        for feature in features:
            if feature.name in self.features:
                raise ValueError(f"two features are named {feature.name!r}")
            self.features[feature.name] = feature
            for table, types in (
                (self.client, feature.client_messages),
                (self.link, feature.link_messages),
            ):
                for cls in types:
                    if cls in table:
                        raise ValueError(
                            f"{cls.TYPE!r} is handled by both {table[cls].name!r} and "
                            f"{feature.name!r}"
                        )
                    table[cls] = feature
        for feature in self.features.values():
            handlers = feature.client_handlers()
            if handlers.keys() != set(feature.client_messages):
                raise ValueError(f"{feature.name!r}: one handler for each of its client messages")
            self.handlers.update(handlers)
        self.with_data = [f for f in self.features.values() if f.has_data]
        self.watchers = [
            f for f in self.features.values() if type(f).client_active is not Feature.client_active
        ]
        """Features that want to hear of every client message (kept short: the hot path)."""

    def __iter__(self) -> Any:
        return iter(self.features.values())

    def __getitem__(self, name: str) -> Feature:
        return self.features[name]
