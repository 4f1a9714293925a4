"""Code both node kinds (``core_region`` and ``edge_node``) import, and only that.

The wire protocol (:mod:`.protocol`), the error tree (:mod:`.errors`), settings
(:mod:`.config`, and :mod:`.settings` for those both processes declare), the door for outside
text (:mod:`.text`, :mod:`.folding`), the snapshot format (:mod:`.snapshot`), the listener and
its budgets (:mod:`.server`, :mod:`.limits`, :mod:`.ratelimit`), HTTP helpers
(:mod:`.http`, and :mod:`.openapi`, the pieces each node's document is built from), room
tokens (:mod:`.roomtoken`), supervised tasks (:mod:`.tasks`), and the ``lightcone`` command
(:mod:`.cli`), which imports each sub-command only when it runs. The local deployment is
:mod:`deploy.local`; benchmarks are in ``load/``.
"""
