"""locust load for lightcone: suggestions (HTTP and websocket) and cursors.

Against one deployment (see ``docs/bench/README.md``)::

    LIGHTCONE_CITY=syd locust -f load/locustfile.py --host https://<edge-app>.fly.dev

``lightcone bench`` runs it headless for each scenario, with ``LIGHTCONE_TARGETS`` spreading
users over the user cities of the local topology. Pick users by class name on the command
line (``SuggestHttpUser``, ``SuggestWsUser``, ``CursorUser``); without names, all three run.
Set ``LIGHTCONE_OUT_DIR`` to keep every request's exact time (``raw.csv.gz``) and a few
counters (``counters.json``) next to locust's own CSVs; the test's start time goes to
``started`` there as it starts (``lightcone bench`` times its link cuts from it).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import locust  # first: gevent patches the standard library before the users import it
from locust import events

try:
    from load import users
except ImportError:  # run from a checkout without the package installed
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from load import users

from load.users import CursorUser, SuggestDeviceUser, SuggestHttpUser, SuggestWsUser

RECORDER = users.RawRecorder()
WATCH = users.CpuWatch()


def _started(environment: Any, **kwargs: Any) -> None:
    RECORDER.rows.clear()
    RECORDER.started = time.time()
    WATCH.start()
    RECORDER.closed = False
    users.mark_started(RECORDER.started)


def _stopped(environment: Any, **kwargs: Any) -> None:
    users.write_outputs(RECORDER, WATCH.stop())


# locust's EventHook.add_listener has no annotations
events.request.add_listener(RECORDER.on_request)  # type: ignore[no-untyped-call]
events.test_start.add_listener(_started)  # type: ignore[no-untyped-call]
events.test_stop.add_listener(_stopped)  # type: ignore[no-untyped-call]


__all__ = ["CursorUser", "SuggestDeviceUser", "SuggestHttpUser", "SuggestWsUser", "locust"]
