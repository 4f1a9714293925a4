"""A core node in the test's own process, on a real store, and its suggestion feature."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from core_region.app import FEATURES
from core_region.metrics import CoreMetrics
from core_region.node import CoreNode
from core_region.settings import CoreSettings
from core_region.store import Store
from core_region.suggest.feature import SuggestFeature


@contextlib.asynccontextmanager
async def running_core(settings: CoreSettings) -> AsyncIterator[CoreNode]:
    """A started core node on the store ``settings`` name, stopped and closed after."""
    store = await Store.open(settings.store_location)
    node = CoreNode(settings, CoreMetrics(), FEATURES)
    try:
        await node.start(store)
        yield node
    finally:
        await node.stop()
        await store.close()


def suggest_of(node: CoreNode) -> SuggestFeature:
    """The node's suggestion feature."""
    feature = node.features["suggest"]
    assert isinstance(feature, SuggestFeature)
    return feature
