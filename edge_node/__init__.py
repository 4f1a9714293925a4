"""An edge node: stateless, serves from memory what the core pushes to it.

The node apart from any feature: :mod:`.node` (:class:`~edge_node.node.EdgeNode`, built once
per app), :mod:`.link` (the link to the core: dial, hello, heartbeats, strict syncs,
dispatch), :mod:`.single_flight` (reads sharing those syncs), :mod:`.freshness` (each
feature's version and age), :mod:`.clients` (the registry of client connections), :mod:`.ws`
(the client websocket), :mod:`.features` (the seam every feature implements), :mod:`.app` (the
ASGI app and the list of features) and :mod:`.api` (its OpenAPI document). One folder per
feature: :mod:`.suggest` and :mod:`.cursors`.
"""
