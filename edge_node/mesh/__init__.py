"""The edge mesh: edges of a tolerant cursor room exchange moves directly, not through the
core (docs/protocol.md §11, docs/operations.md §14). :mod:`.peers` is its sans-I/O state,
:mod:`.link` the sockets around it; the cursor feature (:mod:`edge_node.cursors.feature`)
feeds it each tick and shows what it brings."""
