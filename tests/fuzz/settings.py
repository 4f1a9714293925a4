"""How many examples each fuzz test runs: a base count, scaled by the hypothesis profile.

The default profile (``ci``, loaded in tests/conftest.py) runs each test's base count,
derandomized, so the tier is reproducible and its cost is known. ``--hypothesis-profile=deep``
runs ten times as many examples with a fresh seed each run, for a longer local hunt.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from hypothesis import HealthCheck, Phase, settings

T = TypeVar("T", bound=Callable[..., Any])

BASE_EXAMPLES = 100
"""The ``ci`` profile's ``max_examples``; a profile with more scales every fuzz test up."""


def examples(count: int, **more: Any) -> Callable[[T], T]:
    """Run ``count`` examples (times the profile's scale), with no per-example deadline.

    The deadline is off: on a busy 2-core machine a network round trip can take longer than
    any fixed deadline, and each fuzz step bounds its own waits instead. The ``explain`` phase
    is off: on a failure with deeply nested input it can crash CPython 3.11's AST parser
    inside the pytest plugin (an INTERNALERROR that hides the real failure).
    """
    profile = settings.default
    scale = max(1, (profile.max_examples if profile else BASE_EXAMPLES) // BASE_EXAMPLES)
    more.setdefault("phases", [p for p in Phase if p is not Phase.explain])
    return settings(
        max_examples=count * scale,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        **more,
    )
