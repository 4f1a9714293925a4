"""locust users for lightcone: people typing into a suggestion box, and cursors in a room.

Imported by ``load/locustfile.py`` (after locust, so gevent has patched the standard library).
Every measurement goes through ``environment.events.request``, so locust's own statistics,
CSVs and HTML report are real; :class:`RawRecorder` also keeps each request's exact time.

Users:

* :class:`SuggestHttpUser` — types a city name a character at a time, with human think time
  between keystrokes, and sends ``GET /suggest?q=<prefix>`` on every keystroke without waiting
  for the previous answer (a type-ahead box does not wait either). Each answer's latency is
  timed from its own request.
* :class:`SuggestWsUser` — the same person over the ``/ws`` websocket (msgpack by default,
  ``lightcone.json`` with ``LIGHTCONE_CODEC=json``): ``suggest`` messages, answers matched by
  ``id``.
* :class:`SuggestDeviceUser` — the same person over HTTP with the on-device rung: keystrokes
  of one or two folded characters come from the pack (``GET /suggest/pack``) while the
  feature is tolerant, the others from the edge; one ``device_keystroke`` each, with its rung.
* In a session (``LIGHTCONE_SESSION=1``) suggest users carry the newest bookmark they were
  given, and a share of their queries end in ``POST /search`` and a read-your-writes read.
* :class:`CursorUser` — joins a room, moves at ``LIGHTCONE_MOVE_HZ`` (30) and records how long
  each *other* member's move took to reach it. Nothing is added to the protocol: every mover
  moves to coordinates that encode a counter, and keeps the send time of each position in an
  in-process registry keyed by (member id, x, y). All users run in one locust process, so
  sender and receiver share one clock (``time.perf_counter``).

Each user belongs to one *user city* (a label, e.g. ``syd``) and talks to that city's URL:
either ``--host`` with ``LIGHTCONE_CITY``, or one of several targets given in
``LIGHTCONE_TARGETS`` (``syd=http://...,lhr=http://...``), spread round-robin over users.
See ``docs/bench/README.md`` for every environment variable.

Modules: :mod:`.settings` (``LIGHTCONE_*``), :mod:`.recording` (what every user reports),
:mod:`.connection` (the ``/ws`` client and the base of websocket users), :mod:`.suggest` and
:mod:`.cursors` (the users).
"""

from load.users.cursors import CursorUser
from load.users.recording import CpuWatch, RawRecorder, mark_started, write_outputs
from load.users.suggest import SuggestDeviceUser, SuggestHttpUser, SuggestWsUser

__all__ = [
    "CursorUser",
    "RawRecorder",
    "SuggestDeviceUser",
    "SuggestHttpUser",
    "SuggestWsUser",
    "CpuWatch",
    "mark_started",
    "write_outputs",
]
