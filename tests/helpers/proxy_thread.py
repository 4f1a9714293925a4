"""A :class:`~deploy.local.latency.LatencyProxy` on its own event loop in a thread.

Lets sync fixtures with a wider scope than one test own a proxy, and lets tests cut and heal
it from any loop.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from deploy.local.latency import LatencyProxy


class ProxyThread:
    def __init__(self, target_host: str, target_port: int, **kwargs: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.proxy = self._call(self._make, target_host, target_port, kwargs)

    async def _make(self, host: str, port: int, kwargs: dict[str, Any]) -> LatencyProxy:
        proxy = LatencyProxy(host, port, **kwargs)
        await proxy.start()
        return proxy

    def _call(self, fn: Any, *args: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(fn(*args), self._loop).result(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.proxy.port}"

    def retarget(self, port: int) -> None:
        """Send new connections to another port (a restarted server)."""
        self._loop.call_soon_threadsafe(setattr, self.proxy, "target", ("127.0.0.1", port))

    def cut(self) -> None:
        self._loop.call_soon_threadsafe(self.proxy.cut)

    def heal(self) -> None:
        self._loop.call_soon_threadsafe(self.proxy.heal)

    def close(self) -> None:
        self._call(self.proxy.close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()
