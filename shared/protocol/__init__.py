"""Every message on the wire, and the one codec for them.

Two conversations use these messages:

* **client ↔ edge** on the edge's ``/ws`` (and, for the same shapes, its HTTP routes);
* **edge ↔ core** on the core's ``/link``.

The package splits by concept: :mod:`~shared.protocol.registry` (the one registry of message
types, by which the codec decodes and each node dispatches), :mod:`~shared.protocol.codec`
(msgpack and JSON, checked decoding), :mod:`~shared.protocol.versions` (protocol versions and
subprotocols), and the messages by feature: :mod:`~shared.protocol.common` (errors,
keep-alives), :mod:`~shared.protocol.link` (the link's own), :mod:`~shared.protocol.suggest`
and :mod:`~shared.protocol.cursors`. Everything public is re-exported here, so callers import
from ``shared.protocol``.
"""

from __future__ import annotations

from shared.protocol.codec import (
    decode,
    decode_json,
    encode,
    encode_json,
    from_wire,
    pack,
    to_wire,
    unpack,
)
from shared.protocol.common import (
    Error,
    Ping,
    Pong,
    RequestId,
)
from shared.protocol.cursors import (
    Evict,
    Join,
    Joined,
    Leave,
    Left,
    Member,
    Move,
    Moves,
    MovesBatch,
    Position,
    Presence,
    Reach,
    RoomState,
    RoomStatus,
    RoomSync,
)
from shared.protocol.link import (
    LEVELS,
    MAX_LINK_MESSAGE_BYTES,
    MAX_UP_FRAME_BYTES,
    STRICT,
    TOLERANT,
    Flags,
    Heartbeat,
    Hello,
    Level,
    Resync,
    Sync,
    Synced,
)
from shared.protocol.registry import (
    CLIENT,
    LINK,
    Message,
    lookup,
    message,
    messages,
)
from shared.protocol.suggest import (
    ACK_ID_CONFLICT,
    ACK_INVALID,
    MAX_SOURCE_CHARS,
    AckItem,
    Delta,
    Item,
    Search,
    SearchAck,
    SearchAcks,
    Searches,
    SearchItem,
    Snapshot,
    Suggest,
    Suggestions,
    TermChange,
)
from shared.protocol.versions import (
    LEGACY_SUBPROTOCOLS,
    MIN_PROTOCOL_VERSION,
    PROTOCOL_VERSION,
    SUBPROTOCOL_JSON,
    SUBPROTOCOL_MSGPACK,
    check_protocol,
    choose_subprotocol,
    subprotocol,
    talks,
)

__all__ = [
    "LEVELS",
    "STRICT",
    "TOLERANT",
    "Level",
    "ACK_ID_CONFLICT",
    "ACK_INVALID",
    "MAX_SOURCE_CHARS",
    "AckItem",
    "CLIENT",
    "Delta",
    "Error",
    "Evict",
    "Flags",
    "Heartbeat",
    "Hello",
    "Item",
    "Join",
    "Joined",
    "LEGACY_SUBPROTOCOLS",
    "LINK",
    "Leave",
    "Left",
    "MAX_LINK_MESSAGE_BYTES",
    "MAX_UP_FRAME_BYTES",
    "MIN_PROTOCOL_VERSION",
    "Member",
    "Message",
    "Move",
    "Moves",
    "MovesBatch",
    "PROTOCOL_VERSION",
    "Ping",
    "Pong",
    "Position",
    "Presence",
    "Reach",
    "RequestId",
    "Resync",
    "RoomState",
    "RoomStatus",
    "RoomSync",
    "SUBPROTOCOL_JSON",
    "SUBPROTOCOL_MSGPACK",
    "Search",
    "SearchAck",
    "SearchAcks",
    "SearchItem",
    "Searches",
    "Snapshot",
    "Suggest",
    "Suggestions",
    "Sync",
    "Synced",
    "TermChange",
    "check_protocol",
    "choose_subprotocol",
    "decode",
    "decode_json",
    "encode",
    "encode_json",
    "from_wire",
    "lookup",
    "message",
    "messages",
    "pack",
    "subprotocol",
    "talks",
    "to_wire",
    "unpack",
]
