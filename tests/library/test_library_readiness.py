"""`bcm check` over the whole library against local stand-ins: HTTP, TCP, DNS, backup files and script state."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.engine.conftest import BcmEnv

pytestmark = pytest.mark.prefect

LIBRARY = ROOT / "runbooks"

# Every readiness check in the library, in the order `bcm check` reports them.
ALL_CHECKS = [
    ("ai-incident", "rollback-ready"),
    ("ai-incident", "serving-health"),
    ("dc-power-loss", "ups-health"),
    ("dc-power-loss", "generators-in-auto"),
    ("dc-power-loss", "fuel-reserve"),
    ("dc-power-loss", "bms-reachable"),
    ("ddos", "scrubbing-ready"),
    ("ddos", "dns-answers"),
    ("ddos", "portal-up"),
    ("ddos", "transit-contacts"),
    ("fibre-cut", "protection-paths"),
    ("fibre-cut", "nms-reachable"),
    ("fibre-cut", "splice-contractor-contacts"),
    ("insider-threat", "evidence-store"),
    ("insider-threat", "case-rosters"),
    ("le-emergency-disclosure", "desk-roster"),
    ("le-emergency-disclosure", "disclosure-portal"),
    ("le-emergency-disclosure", "request-log-backup"),
    ("pandemic", "remote-capacity"),
    ("pandemic", "rosters"),
    ("pandemic", "overflow-partner"),
    ("ransomware", "vault-immutable"),
    ("ransomware", "backup-age"),
    ("ransomware", "directory-backup"),
    ("ransomware", "oob-access"),
    ("ransomware", "oob-console"),
    ("ransomware", "evidence-store"),
    ("supplier-failure", "supplier-contracts"),
    ("supplier-failure", "secondary-gateway"),
    ("vuln-disclosure", "security-txt"),
    ("vuln-disclosure", "psirt-roster"),
]

# What the read-only check scripts find: every subject ready unless a test says otherwise.
SCRIPT_STATE = {
    "check_backup_vault": "ok: object lock on, restore test 2026-10-30",
    "check_evidence_store": "ok: WORM retention 7y",
    "check_fuel": "48",
    "check_generators": "ok: auto, load test passed",
    "check_model_rollback": "ok: v41 approved, kill switch tested",
    "check_oob_access": "ok: console reachable, break-glass sealed",
    "check_protection_path": "ok: protection up, diverse",
    "check_roster": "ok: 24x7 cover",
    "check_scrubbing": "ok: BGP up, GRE up",
    "check_supplier": "ok: contacts verified",
    "check_ups": "ok: on line",
    "check_vpn_capacity": "1000",
}


# What the stale backup endpoint reports: three hours before the tests started, far beyond a 15m RPO.
STALE_BACKUP = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)


class StandInServer(ThreadingHTTPServer):
    """The stand-in HTTP server; remembers the paths it was asked for."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), StandIn)
        self.seen: list[str] = []


class StandIn(BaseHTTPRequestHandler):
    """Health endpoints, backup status (fresh and stale) and security.txt of the systems the checks probe."""

    def do_GET(self) -> None:
        assert isinstance(self.server, StandInServer)
        self.server.seen.append(self.path)
        now = datetime.now(UTC)
        if self.path.endswith("/security.txt"):
            self._answer(200, "text/plain", b"Contact: mailto:security@example.net\nExpires: 2027-12-31T00:00:00Z\n")
        elif self.path.endswith("/backup/status"):
            self._json({"last_backup": (now - timedelta(minutes=5)).isoformat()})
        elif self.path.endswith("/backup/stale"):
            self._json({"last_backup": STALE_BACKUP.isoformat()})
        elif self.path.endswith(("/health", "/healthz")):
            self._json({"status": "ok"})
        else:
            self._answer(404, "text/plain", b"not found\n")

    def _json(self, body: dict[str, str]) -> None:
        self._answer(200, "application/json", json.dumps(body).encode())

    def _answer(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the test output is the checks' results."""


@dataclass
class StandIns:
    """Where the local stand-ins answer, and the `-p` values that point the library at them."""

    server: StandInServer
    console: socket.socket
    state: Path
    backup_marker: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def tcp_port(self) -> int:
        return int(self.console.getsockname()[1])

    def parameters(self, **overrides: str) -> dict[str, str]:
        values = {
            "serving_health_url": f"{self.base_url}/ai/healthz",
            "bms_url": f"{self.base_url}/bms/health",
            "public_dns_name": "localhost",
            "portal_health_url": f"{self.base_url}/portal/healthz",
            "nms_url": f"{self.base_url}/nms/api/health",
            "disclosure_portal_url": f"{self.base_url}/le-portal/health",
            "request_log_backup_url": f"{self.base_url}/le-portal/api/backup/status",
            "backup_status_url": f"{self.base_url}/vaults/immutable-vault-lon/backup/status",
            "directory_backup_marker": str(self.backup_marker),
            "oob_console_host": "127.0.0.1",
            "oob_console_port": str(self.tcp_port),
            "secondary_gateway_url": f"{self.base_url}/pay-secondary/health",
            "security_txt_url": f"{self.base_url}/.well-known/security.txt",
        }
        return {**values, **overrides}


@pytest.fixture
def stand_ins(tmp_path: Path) -> Iterator[StandIns]:
    """An HTTP server and a listening TCP port on 127.0.0.1, script state and a fresh backup marker file."""
    server = StandInServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    console = socket.create_server(("127.0.0.1", 0))
    state = tmp_path / "script-state"
    state.mkdir()
    for check, line in SCRIPT_STATE.items():
        (state / check).write_text(line + "\n")
    marker = tmp_path / "directory-backup" / "last-success"
    marker.parent.mkdir()
    marker.touch()
    try:
        yield StandIns(server=server, console=console, state=state, backup_marker=marker)
    finally:
        console.close()
        server.shutdown()
        server.server_close()
        thread.join(5)


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return int(probe.getsockname()[1])


def bcm_check(env: BcmEnv, stand_ins: StandIns, parameters: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`python -m bcm check -p ... --json` on the shipped library, as the readiness schedule runs it."""
    process_env = {
        **os.environ,
        "BCM_HOME": str(env.home),
        "BCM_DATABASE_URL": env.database_url,
        "BCM_RUNBOOKS": str(LIBRARY),
        "BCM_SCRIPTS_STATE": str(stand_ins.state),
        "PREFECT_API_URL": env.api_url,
    }
    process_env.pop("BCM_SCRIPTS_LIVE", None)
    args = [arg for name, value in parameters.items() for arg in ("-p", f"{name}={value}")]
    return subprocess.run(
        [sys.executable, "-m", "bcm", "check", *args, "--json"],
        capture_output=True,
        text=True,
        env=process_env,
        cwd=ROOT,
        timeout=180,
    )


def test_library_is_ready_against_local_stand_ins(bcm_env: BcmEnv, stand_ins: StandIns) -> None:
    """Every prevention step of every runbook passes against the stand-ins; each result is recorded."""
    result = bcm_check(bcm_env, stand_ins, stand_ins.parameters())

    assert result.returncode == 0, result.stdout + result.stderr
    doc = json.loads(result.stdout)
    assert doc["ready"] is True
    assert [(c["runbook"], c["step"], c["ok"], c["status"]) for c in doc["checks"]] == [
        (runbook, step, True, "succeeded") for runbook, step in ALL_CHECKS
    ]
    assert sorted(set(stand_ins.server.seen)) == [
        "/.well-known/security.txt",
        "/ai/healthz",
        "/bms/health",
        "/le-portal/api/backup/status",
        "/le-portal/health",
        "/nms/api/health",
        "/pay-secondary/health",
        "/portal/healthz",
        "/vaults/immutable-vault-lon/backup/status",
    ]
    stand_ins.console.settimeout(0)
    probe, _ = stand_ins.console.accept()  # the oob-console check connected
    probe.close()
    details = {(c["runbook"], c["step"]): c["detail"] for c in doc["checks"]}
    assert details[("dc-power-loss", "fuel-reserve")] == "check_fuel man-dc2: ok (generator fuel 48 hours >= 24)"
    assert (
        details[("pandemic", "remote-capacity")]
        == "check_vpn_capacity vpn-man: ok (remote-access seats 1000 seats >= 850)"
    )
    assert (
        details[("vuln-disclosure", "psirt-roster")] == "check_roster security: ok (24x7 on-call cover): ok: 24x7 cover"
    )
    with bcm_env.store() as store:
        recorded = sorted((c.runbook_id, c.step_id, c.ok) for c in store.list_checks())
    assert recorded == sorted((runbook, step, True) for runbook, step in ALL_CHECKS)


@pytest.mark.parametrize(
    ("case", "failed"),
    [
        ("bms-down", ("dc-power-loss", "bms-reachable")),
        ("supplier-not-ready", ("pandemic", "overflow-partner")),
        ("stale-request-log-backup", ("le-emergency-disclosure", "request-log-backup")),
    ],
)
def test_one_failed_check_fails_readiness(
    bcm_env: BcmEnv, stand_ins: StandIns, case: str, failed: tuple[str, str]
) -> None:
    """One stand-in down, one state file not ready or one stale backup: exit 1, exactly that check failed."""
    overrides: dict[str, str] = {}
    if case == "bms-down":
        url = f"http://127.0.0.1:{closed_port()}/bms/health"
        overrides["bms_url"] = url
        pattern = re.escape(f"ActionFailed: GET {url} failed: [Errno 111] Connection refused")
    elif case == "supplier-not-ready":
        (stand_ins.state / "check_supplier.ccaas-provider").write_text("fail: contract expired 2026-09-30\n")
        pattern = re.escape(
            "exit code 1: check_supplier ccaas-provider: NOT READY "
            "(escalation contacts current, alternate contracted): fail: contract expired 2026-09-30"
        )
    else:
        url = f"{stand_ins.base_url}/le-portal/api/backup/stale"
        overrides["request_log_backup_url"] = url
        # The age is three hours plus however long the test has run: seconds or minutes.
        pattern = (
            re.escape(f"ActionFailed: last backup from {url} is 3h")
            + r"( \d+[ms])?"
            + re.escape(f" old (at {STALE_BACKUP.isoformat()}), older than the RPO of 15m")
        )

    result = bcm_check(bcm_env, stand_ins, stand_ins.parameters(**overrides))

    assert (result.returncode, result.stdout[:1]) == (1, "{"), result.stdout + result.stderr
    doc = json.loads(result.stdout)
    assert doc["ready"] is False
    assert [(c["runbook"], c["step"]) for c in doc["checks"]] == ALL_CHECKS
    assert [(c["runbook"], c["step"], c["status"]) for c in doc["checks"] if not c["ok"]] == [(*failed, "failed")]
    detail = next(c["detail"] for c in doc["checks"] if not c["ok"])
    assert re.fullmatch(pattern, detail), detail
