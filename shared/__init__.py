"""Code both node kinds (``core_region`` and ``edge_node``) import, and only that.

The wire protocol (:mod:`.protocol`), the error tree (:mod:`.errors`), settings
(:mod:`.config`, and :mod:`.settings` for those both processes declare), the door for outside
text (:mod:`.text`, :mod:`.folding`), the snapshot format (:mod:`.snapshot`), the listener and
its budgets (:mod:`.server`, :mod:`.limits`, :mod:`.ratelimit`), HTTP helpers
(:mod:`.http`, :mod:`.openapi`, :mod:`.origins`), room tokens (:mod:`.roomtoken`), supervised
tasks (:mod:`.tasks`), and the ``lightcone`` command (:mod:`.cli`), which imports each
sub-command only when it runs. One exception: :mod:`.origins` (who may open ``/ws``) is read
by the edge and by the local demo's control API, not by the core. The local deployment is
:mod:`deploy.local`; benchmarks are in ``load/``.
"""
