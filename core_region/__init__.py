"""The core region: the one writer, the precompute, and the publisher to edges.

The node apart from any feature: :mod:`.node` (:class:`~core_region.node.CoreNode`: edges,
versions, flags, epochs, publishing), :mod:`.link` (the ``/link`` websocket and its dispatch),
:mod:`.store` (every SQL statement, for both engines), :mod:`.db` (the engines: SQLite and
PostgreSQL), :mod:`.admin` (status and flags), :mod:`.features` (the seam every feature
implements), :mod:`.app` (the ASGI app and the list of features) and
:mod:`.api` (its OpenAPI document). One folder per feature: :mod:`.suggest` and
:mod:`.cursors`.
"""
