"""`SI64_API_CPU_REPORT`: an API process adds up the CPU of each request by method and route, and
writes it when it stops (dev/api_server.py); without it, nothing is written."""

from __future__ import annotations

import http.client
import json
import urllib.parse

from tests.e2e.edge_support import second_api


def _send(url: str, requests: list[tuple[str, str]]) -> list[int]:
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    statuses = []
    for method, path in requests:
        conn.request(method, path, body=b"{}" if method == "POST" else None)
        r = conn.getresponse()
        r.read()
        statuses.append(r.status)
    conn.close()
    return statuses


def test_each_process_writes_its_cpu_per_route_when_it_stops(local_stack, tmp_path):
    report = tmp_path / "cpu"
    unknown = "/api/contracts/CTR-AAAAAAAAAAAAAAAAAAAAAA"
    with second_api(local_stack, tmp_path / "api.log", SI64_API_CPU_REPORT=str(report)) as url:
        statuses = _send(url, [("GET", unknown)] * 3 + [("GET", "/api/nowhere"), ("POST", "/api/rent")])
        assert statuses[:4] == [404, 404, 404, 404] and 400 <= statuses[4] < 500
    files = list(tmp_path.glob("cpu.*.json"))
    assert len(files) == 1
    got = json.loads(files[0].read_text())
    status = got["GET /api/contracts/{contract_id}"]
    assert status["requests"] == 3 and status["cpu_ms_per_request"] > 0
    assert got["GET (no route)"]["requests"] == 1
    assert got["POST /api/rent"]["requests"] == 1
    health = got["GET /api/health"]  # the launcher's readiness polls
    assert health["requests"] >= 1


def test_no_report_unless_asked(local_stack, tmp_path):
    with second_api(local_stack, tmp_path / "api.log") as url:
        _send(url, [("GET", "/api/nowhere")])
    assert [p.name for p in tmp_path.iterdir()] == ["api.log"]
