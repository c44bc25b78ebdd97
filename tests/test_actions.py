"""bcm.actions against real local things: an HTTP server, sockets, the resolver, files."""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from freezegun import freeze_time

from bcm.actions import backup_age, disk_free, dns_resolves, http_probe, tcp_port_open
from bcm.errors import ActionFailed

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)

# path -> (status, headers, body)
ROUTES: dict[str, tuple[int, dict[str, str], bytes]] = {
    "/health": (200, {"Content-Type": "text/plain"}, b"status: green\n"),
    "/security.txt": (200, {"Content-Type": "text/plain"}, b"Contact: mailto:security@example.net\n"),
    "/backup/json": (200, {"Content-Type": "application/json"}, b'{"last_backup": "2026-11-22T09:30:00Z"}'),
    "/backup/header": (200, {"Last-Modified": "Sun, 22 Nov 2026 09:00:00 GMT"}, b"ok"),
    "/backup/naive": (200, {"Content-Type": "application/json"}, b'{"last_backup": "2026-11-22T09:30:00"}'),
    "/backup/garbled": (200, {"Content-Type": "application/json"}, b'{"last_backup": "yesterday"}'),
    "/backup/nothing": (200, {"Content-Type": "text/plain"}, b"backups are fine, trust me"),
    "/backup/down": (503, {}, b"maintenance"),
}


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status, headers, body = ROUTES.get(self.path, (404, {}, b"not found"))
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """A real HTTP server on 127.0.0.1; yields its base URL."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _failure(excinfo: pytest.ExceptionInfo[ActionFailed]) -> str:
    return str(excinfo.value)


# --------------------------------------------------------------------------- http_probe


def test_http_probe_reports_status_and_size(server: str) -> None:
    """A 200 answer passes and the output carries url, status and body size."""
    out = http_probe(f"{server}/health")
    assert {k: out[k] for k in ("url", "status", "bytes")} == {
        "url": f"{server}/health",
        "status": 200,
        "bytes": 14,
    }
    assert isinstance(out["elapsed_ms"], int)
    assert out["elapsed_ms"] >= 0


def test_http_probe_fails_on_unexpected_status(server: str) -> None:
    """A status outside expect_status fails with the status in the message."""
    with pytest.raises(ActionFailed) as excinfo:
        http_probe(f"{server}/nope", expect_status=[200, 204])
    assert _failure(excinfo) == f"GET {server}/nope returned 404, expected 200 or 204"


def test_http_probe_accepts_statuses_written_as_strings(server: str) -> None:
    """Rendered templates give strings; '404' in expect_status still matches a 404."""
    out = http_probe(f"{server}/nope", expect_status=["404"], timeout_s="2.5")
    assert out["status"] == 404


def test_http_probe_checks_body_text(server: str) -> None:
    """`contains` passes when the text is in the body and fails when it is not."""
    assert http_probe(f"{server}/security.txt", contains="Contact:")["status"] == 200
    with pytest.raises(ActionFailed) as excinfo:
        http_probe(f"{server}/health", contains="Contact:")
    assert _failure(excinfo) == f"GET {server}/health returned 200 but the body does not contain 'Contact:'"


def test_http_probe_fails_when_nothing_listens(closed_port: int) -> None:
    """A refused connection is an ActionFailed naming the URL, not an httpx exception."""
    url = f"http://127.0.0.1:{closed_port}/health"
    with pytest.raises(ActionFailed) as excinfo:
        http_probe(url, timeout_s=1.0)
    assert _failure(excinfo).startswith(f"GET {url} failed: ")
    assert "refused" in _failure(excinfo).lower()


def test_http_probe_rejects_a_non_numeric_timeout(server: str) -> None:
    """A timeout that is not a number is reported by name."""
    with pytest.raises(ActionFailed) as excinfo:
        http_probe(f"{server}/health", timeout_s="soon")
    assert _failure(excinfo) == "timeout_s must be a number, got 'soon'"


# --------------------------------------------------------------------------- dns_resolves


def test_dns_resolves_localhost() -> None:
    """localhost resolves locally and 127.0.0.1 is among its sorted, unique addresses."""
    out = dns_resolves("localhost", expect="127.0.0.1")
    assert out["name"] == "localhost"
    assert "127.0.0.1" in out["addresses"]
    assert out["addresses"] == sorted(set(out["addresses"]))
    assert set(out["addresses"]) <= {"127.0.0.1", "::1"}


def test_dns_resolves_fails_when_an_expected_address_is_missing() -> None:
    """Every expected address must be among the answers; the message lists what was found."""
    found = dns_resolves("localhost")["addresses"]
    with pytest.raises(ActionFailed) as excinfo:
        dns_resolves("localhost", expect=["127.0.0.1", "192.0.2.1"])
    assert _failure(excinfo) == f"localhost resolves to {', '.join(found)}; missing expected 192.0.2.1"


def test_dns_resolves_fails_on_a_malformed_name() -> None:
    """A name the resolver cannot even encode fails without touching the network."""
    with pytest.raises(ActionFailed) as excinfo:
        dns_resolves("a..b")
    assert _failure(excinfo) == (
        "a..b does not resolve: encoding with 'idna' codec failed (UnicodeError: label empty or too long)"
    )


# --------------------------------------------------------------------------- tcp_port_open


def test_tcp_port_open_connects_to_a_listener() -> None:
    """A listening socket on 127.0.0.1 is open; the port may be given as a string."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        out = tcp_port_open("127.0.0.1", str(port), timeout_s=1.0)
    assert {k: out[k] for k in ("host", "port")} == {"host": "127.0.0.1", "port": port}
    assert isinstance(out["connect_ms"], int)


def test_tcp_port_open_fails_when_refused(closed_port: int) -> None:
    """A closed port fails with the host, port and the reason in words."""
    with pytest.raises(ActionFailed) as excinfo:
        tcp_port_open("127.0.0.1", closed_port, timeout_s=1.0)
    assert _failure(excinfo) == f"cannot connect to 127.0.0.1:{closed_port}: Connection refused"


@pytest.mark.parametrize(
    ("port", "message"),
    [
        (0, "port must be between 1 and 65535, got 0"),
        (70000, "port must be between 1 and 65535, got 70000"),
        ("https", "port must be a whole number, got 'https'"),
    ],
)
def test_tcp_port_open_rejects_bad_ports(port: int | str, message: str) -> None:
    """Ports outside 1-65535 or not numbers are refused before any connection."""
    with pytest.raises(ActionFailed) as excinfo:
        tcp_port_open("127.0.0.1", port)
    assert _failure(excinfo) == message


# --------------------------------------------------------------------------- backup_age


def _backup_file(tmp_path: Path, age: timedelta) -> Path:
    path = tmp_path / "nightly.tar.zst"
    path.write_bytes(b"backup")
    stamp = (NOW - age).timestamp()
    os.utime(path, (stamp, stamp))
    return path


def test_backup_age_from_file_within_rpo(tmp_path: Path) -> None:
    """A file modified 10 minutes ago is within a 15-minute RPO; output gives age and RPO in seconds."""
    path = _backup_file(tmp_path, timedelta(minutes=10))
    assert backup_age(path=str(path), rpo="15m", now=NOW) == {
        "source": str(path),
        "last_backup": "2026-11-22T09:50:00+00:00",
        "age_s": 600,
        "rpo_s": 900,
    }


def test_backup_age_from_file_older_than_rpo(tmp_path: Path) -> None:
    """A file modified 20 minutes ago breaks a 15-minute RPO."""
    path = _backup_file(tmp_path, timedelta(minutes=20))
    with pytest.raises(ActionFailed) as excinfo:
        backup_age(path=str(path), rpo="15m", now=NOW)
    assert _failure(excinfo) == (
        f"last backup from {path} is 20m old (at 2026-11-22T09:40:00+00:00), older than the RPO of 15m"
    )


def test_backup_age_uses_the_bcm_clock(tmp_path: Path) -> None:
    """Without now=, the age is measured against bcm.clock.now() (frozen here)."""
    path = _backup_file(tmp_path, timedelta(hours=3))
    with freeze_time(NOW):
        out = backup_age(path=str(path), rpo="4h")
    assert (out["age_s"], out["rpo_s"]) == (10800, 14400)


def test_backup_age_from_json_endpoint(server: str) -> None:
    """An endpoint answering {"last_backup": ISO 8601} gives the backup time."""
    assert backup_age(url=f"{server}/backup/json", rpo="1h", now=NOW) == {
        "source": f"{server}/backup/json",
        "last_backup": "2026-11-22T09:30:00+00:00",
        "age_s": 1800,
        "rpo_s": 3600,
    }


def test_backup_age_from_last_modified_header(server: str) -> None:
    """Without JSON, the Last-Modified header gives the backup time."""
    out = backup_age(url=f"{server}/backup/header", rpo="2h", now=NOW)
    assert (out["last_backup"], out["age_s"], out["rpo_s"]) == ("2026-11-22T09:00:00+00:00", 3600, 7200)


def test_backup_age_from_endpoint_older_than_rpo(server: str) -> None:
    """A backup 30 minutes old breaks a 15-minute RPO, whatever the source."""
    with pytest.raises(ActionFailed) as excinfo:
        backup_age(url=f"{server}/backup/json", rpo="15m", now=NOW)
    assert _failure(excinfo) == (
        f"last backup from {server}/backup/json is 30m old (at 2026-11-22T09:30:00+00:00), older than the RPO of 15m"
    )


@pytest.mark.parametrize(
    ("route", "message"),
    [
        (
            "/backup/naive",
            "last_backup '2026-11-22T09:30:00' has no UTC offset (write e.g. 2026-11-22T10:00:00Z)",
        ),
        ("/backup/garbled", "last_backup 'yesterday' is not an ISO 8601 time"),
        ("/backup/nothing", "no JSON 'last_backup' and no Last-Modified header: cannot tell the backup's age"),
    ],
)
def test_backup_age_rejects_unreadable_endpoints(server: str, route: str, message: str) -> None:
    """An endpoint that does not say when the backup ran fails with the reason."""
    with pytest.raises(ActionFailed) as excinfo:
        backup_age(url=f"{server}{route}", rpo="1h", now=NOW)
    assert _failure(excinfo) == f"{server}{route}: {message}"


def test_backup_age_fails_when_endpoint_is_down(server: str) -> None:
    """A status other than 200 from the backup endpoint is a failure."""
    with pytest.raises(ActionFailed) as excinfo:
        backup_age(url=f"{server}/backup/down", rpo="1h", now=NOW)
    assert _failure(excinfo) == f"GET {server}/backup/down returned 503, expected 200"


def test_backup_age_fails_on_a_backup_from_the_future(tmp_path: Path) -> None:
    """A backup stamped an hour ahead points at a wrong clock and fails."""
    path = _backup_file(tmp_path, timedelta(hours=-1))
    with pytest.raises(ActionFailed) as excinfo:
        backup_age(path=str(path), rpo="15m", now=NOW)
    assert _failure(excinfo) == (
        f"last backup from {path} is stamped 2026-11-22T11:00:00+00:00, 1h in the future: check the clocks"
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "backup_age needs exactly one of 'path' or 'url'"),
        ({"path": "/x", "url": "http://127.0.0.1/"}, "backup_age needs exactly one of 'path' or 'url'"),
        (
            {"path": "/x", "rpo": "soon"},
            "rpo: 'soon' is not a duration: write a whole number and a unit, such as 90s, 15m, 4h or 2d",
        ),
    ],
)
def test_backup_age_rejects_bad_arguments(kwargs: dict[str, str], message: str) -> None:
    """Neither or both sources, or an RPO that is not a duration, are refused."""
    with pytest.raises(ActionFailed) as excinfo:
        backup_age(now=NOW, **kwargs)
    assert _failure(excinfo) == message


def test_backup_age_fails_on_a_missing_file(tmp_path: Path) -> None:
    """A backup file that does not exist fails with the path and the reason."""
    path = tmp_path / "absent.tar"
    with pytest.raises(ActionFailed) as excinfo:
        backup_age(path=str(path), rpo="1h", now=NOW)
    assert _failure(excinfo) == f"cannot read the backup time of {path}: No such file or directory"


# --------------------------------------------------------------------------- disk_free


def test_disk_free_reports_the_file_system(tmp_path: Path) -> None:
    """Output describes the file system holding the path; free_pct is free/total rounded to 2 places."""
    out = disk_free(str(tmp_path), min_free_pct="0")
    assert out["path"] == str(tmp_path)
    assert out["total_bytes"] == shutil.disk_usage(tmp_path).total
    assert out["free_pct"] == round(out["free_bytes"] * 100 / out["total_bytes"], 2)
    assert out["min_free_pct"] == 0.0


def test_disk_free_fails_below_the_minimum(tmp_path: Path) -> None:
    """Asking for 100% free fails on any file system holding a file."""
    (tmp_path / "data").write_bytes(b"x" * 4096)
    with pytest.raises(ActionFailed) as excinfo:
        disk_free(str(tmp_path), min_free_pct=100)
    assert _failure(excinfo).startswith(f"{tmp_path}: ")
    assert _failure(excinfo).endswith("% free, below the minimum of 100%")


@pytest.mark.parametrize(
    ("path", "minimum", "message"),
    [
        ("/nonexistent/bcm-test", 10, "cannot read free space of /nonexistent/bcm-test: No such file or directory"),
        (".", 150, "min_free_pct must be between 0 and 100, got 150"),
        (".", "lots", "min_free_pct must be a number, got 'lots'"),
    ],
)
def test_disk_free_rejects_bad_input(path: str, minimum: float | str, message: str) -> None:
    """A missing path or a minimum outside 0-100 is an ActionFailed with the reason."""
    with pytest.raises(ActionFailed) as excinfo:
        disk_free(path, min_free_pct=minimum)
    assert _failure(excinfo) == message


def test_action_failed_is_a_bcm_error() -> None:
    """ActionFailed keeps its message and belongs to bcm's error hierarchy."""
    from bcm.errors import BcmError

    error = ActionFailed("UPS on battery")
    assert isinstance(error, BcmError)
    assert (error.message, str(error)) == ("UPS on battery", "UPS on battery")


def test_outputs_are_json_serialisable(server: str, tmp_path: Path) -> None:
    """Every action's output survives json.dumps, as step outputs must."""
    outputs = [
        http_probe(f"{server}/health"),
        dns_resolves("localhost"),
        backup_age(path=str(_backup_file(tmp_path, timedelta(minutes=1))), rpo="15m", now=NOW),
        disk_free(str(tmp_path), min_free_pct=0),
    ]
    assert [json.loads(json.dumps(o)) for o in outputs] == outputs
