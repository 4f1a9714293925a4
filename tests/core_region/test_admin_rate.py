"""The core's admin API has a per-client rate: 429 with Retry-After, checked before the token."""

from __future__ import annotations

from pathlib import Path

from starlette.testclient import TestClient

from core_region.app import create_app
from tests.core_region.test_app import TOKEN, settings


def test_admin_requests_over_the_rate_get_429(tmp_path: Path) -> None:
    app = create_app(settings(tmp_path, http_rate=0.001, http_burst=3))
    with TestClient(app) as client:
        client.headers["Authorization"] = f"Bearer {TOKEN}"
        for _ in range(2):
            assert client.get("/admin/status").status_code == 200
        assert client.get("/admin/status", headers={"Authorization": "x"}).status_code == 401
        refused = client.get("/admin/flags")
        assert refused.status_code == 429
        assert refused.json()["error"] == "rate_limited"
        assert int(refused.headers["retry-after"]) >= 1
        # Guessing tokens spends the same budget: a wrong token gets 429 too, not 401.
        assert client.get("/admin/status", headers={"Authorization": "x"}).status_code == 429
        assert client.get("/healthz").status_code == 200  # not rate-limited
        metrics = client.get("/metrics/").text
    assert 'lightcone_http_rate_limited_total{route="/admin"} 2.0' in metrics
