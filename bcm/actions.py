"""Generic entry points for ``call:`` steps: readiness probes a runbook can use without a script.

A runbook names one as ``call: "bcm.actions:http_probe"`` with ``with: {url: ...}``. Each function
takes keyword arguments as the runbook writes them (after template rendering, so numbers may
arrive as strings and are converted here), returns a JSON-able dict that becomes the step's
output, and raises :class:`ActionFailed` with a sentence for people when the check fails.

Every function here only reads: none of them changes the system it looks at, which is why they
are safe as readiness checks and as ``exercise: run`` steps.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx

from bcm import clock
from bcm.durations import DurationError, format_duration, parse_duration
from bcm.errors import ActionFailed

__all__ = [
    "ActionFailed",
    "backup_age",
    "disk_free",
    "dns_resolves",
    "http_probe",
    "tcp_port_open",
]

# A backup stamped further in the future than this means a clock is wrong, not a fresh backup.
_FUTURE_TOLERANCE = timedelta(minutes=5)


def http_probe(
    url: str,
    expect_status: Iterable[int | str] = (200,),
    timeout_s: float | str = 5.0,
    contains: str | None = None,
) -> dict[str, Any]:
    """GET ``url`` and check the status code and, optionally, the body.

    Args:
        url: the URL to fetch. Redirects are not followed: a redirect is a status like any other.
        expect_status: status codes that count as success.
        timeout_s: seconds to wait for connect and for each read.
        contains: text the response body must contain, if given.

    Returns:
        ``{"url", "status", "elapsed_ms", "bytes"}``.

    Raises:
        ActionFailed: when the request fails, the status is not expected or the text is missing.
    """
    expected = sorted({_as_int("expect_status", s) for s in expect_status})
    timeout = _as_float("timeout_s", timeout_s)
    started = time.monotonic()
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False) as client:
            response = client.get(url)
    except httpx.HTTPError as exc:
        raise ActionFailed(f"GET {url} failed: {_reason(exc)}") from exc
    elapsed_ms = int((time.monotonic() - started) * 1000)
    if response.status_code not in expected:
        raise ActionFailed(f"GET {url} returned {response.status_code}, expected {' or '.join(map(str, expected))}")
    if contains is not None and contains not in response.text:
        raise ActionFailed(f"GET {url} returned {response.status_code} but the body does not contain {contains!r}")
    return {"url": url, "status": response.status_code, "elapsed_ms": elapsed_ms, "bytes": len(response.content)}


def dns_resolves(name: str, expect: str | Iterable[str] | None = None) -> dict[str, Any]:
    """Resolve ``name`` with the system resolver.

    Args:
        name: the host name to resolve.
        expect: an address, or addresses, that must all be among the answers.

    Returns:
        ``{"name", "addresses"}`` with the addresses sorted and without duplicates.

    Raises:
        ActionFailed: when the name does not resolve or an expected address is missing.
    """
    try:
        infos = socket.getaddrinfo(name, None)
    except (socket.gaierror, UnicodeError) as exc:
        raise ActionFailed(f"{name} does not resolve: {_reason(exc)}") from exc
    addresses = sorted({str(info[4][0]) for info in infos})
    if expect is not None:
        wanted = [expect] if isinstance(expect, str) else list(expect)
        missing = [address for address in wanted if address not in addresses]
        if missing:
            raise ActionFailed(f"{name} resolves to {', '.join(addresses)}; missing expected {', '.join(missing)}")
    return {"name": name, "addresses": addresses}


def tcp_port_open(host: str, port: int | str, timeout_s: float | str = 3.0) -> dict[str, Any]:
    """Open (and close at once) a TCP connection to ``host:port``.

    Args:
        host: host name or address.
        port: TCP port, 1-65535.
        timeout_s: seconds to wait for the connection.

    Returns:
        ``{"host", "port", "connect_ms"}``.

    Raises:
        ActionFailed: when the connection is refused, times out or the host does not resolve.
    """
    number = _as_int("port", port)
    if not 1 <= number <= 65535:
        raise ActionFailed(f"port must be between 1 and 65535, got {number}")
    timeout = _as_float("timeout_s", timeout_s)
    started = time.monotonic()
    try:
        with socket.create_connection((host, number), timeout=timeout):
            pass
    except OSError as exc:
        raise ActionFailed(f"cannot connect to {host}:{number}: {_reason(exc)}") from exc
    return {"host": host, "port": number, "connect_ms": int((time.monotonic() - started) * 1000)}


def backup_age(
    path: str | None = None,
    url: str | None = None,
    rpo: str = "15m",
    timeout_s: float | str = 5.0,
    *,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Check that the last backup is younger than the RPO.

    The time of the last backup comes from a file's modification time (``path``) or from an HTTP
    endpoint (``url``) answering JSON ``{"last_backup": "<ISO 8601 with offset>"}`` or, failing
    that, a ``Last-Modified`` header.

    Args:
        path: a backup file, or a marker file the backup job touches when it finishes.
        url: a backup status endpoint.
        rpo: the recovery point objective as a duration, e.g. ``15m``.
        timeout_s: seconds to wait for ``url``.
        now: the current time; default :func:`bcm.clock.now`.

    Returns:
        ``{"source", "last_backup", "age_s", "rpo_s"}`` with ``last_backup`` in ISO 8601, UTC.

    Raises:
        ActionFailed: when neither or both of ``path`` and ``url`` are given, the time cannot be
            read, it lies in the future, or the backup is older than the RPO.
    """
    try:
        limit = parse_duration(rpo)
    except DurationError as exc:
        raise ActionFailed(f"rpo: {exc}") from exc
    if path is not None and url is None:
        source = path
        last = _mtime(Path(path))
    elif url is not None and path is None:
        source = url
        last = _last_backup_from_url(url, _as_float("timeout_s", timeout_s))
    else:
        raise ActionFailed("backup_age needs exactly one of 'path' or 'url'")
    current = clock.as_utc(now) if now is not None else clock.now()
    age = current - last
    if age < -_FUTURE_TOLERANCE:
        raise ActionFailed(
            f"last backup from {source} is stamped {last.isoformat()}, "
            f"{format_duration(-age)} in the future: check the clocks"
        )
    if age > limit:
        raise ActionFailed(
            f"last backup from {source} is {format_duration(age)} old (at {last.isoformat()}), "
            f"older than the RPO of {format_duration(limit)}"
        )
    return {
        "source": source,
        "last_backup": last.isoformat(),
        "age_s": int(age.total_seconds()),
        "rpo_s": int(limit.total_seconds()),
    }


def disk_free(path: str, min_free_pct: float | str) -> dict[str, Any]:
    """Check that the file system holding ``path`` has at least ``min_free_pct`` percent free.

    Args:
        path: any path on the file system to check.
        min_free_pct: the minimum free space, in percent of the file system's size (0-100).

    Returns:
        ``{"path", "total_bytes", "free_bytes", "free_pct", "min_free_pct"}``; ``free_pct`` is
        rounded to two decimals.

    Raises:
        ActionFailed: when the path does not exist or less space than the minimum is free.
    """
    minimum = _as_float("min_free_pct", min_free_pct)
    if not 0 <= minimum <= 100:
        raise ActionFailed(f"min_free_pct must be between 0 and 100, got {minimum:g}")
    try:
        usage = shutil.disk_usage(path)
    except OSError as exc:
        raise ActionFailed(f"cannot read free space of {path}: {_reason(exc)}") from exc
    free_pct = round(usage.free * 100 / usage.total, 2) if usage.total else 0.0
    if free_pct < minimum:
        raise ActionFailed(f"{path}: {free_pct:g}% free, below the minimum of {minimum:g}%")
    return {
        "path": path,
        "total_bytes": usage.total,
        "free_bytes": usage.free,
        "free_pct": free_pct,
        "min_free_pct": minimum,
    }


# --------------------------------------------------------------------------- helpers


def _mtime(path: Path) -> datetime:
    try:
        return datetime.fromtimestamp(os.stat(path).st_mtime, UTC)
    except OSError as exc:
        raise ActionFailed(f"cannot read the backup time of {path}: {_reason(exc)}") from exc


def _last_backup_from_url(url: str, timeout: float) -> datetime:
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False) as client:
            response = client.get(url)
    except httpx.HTTPError as exc:
        raise ActionFailed(f"GET {url} failed: {_reason(exc)}") from exc
    if response.status_code != 200:
        raise ActionFailed(f"GET {url} returned {response.status_code}, expected 200")
    stamp = _json_last_backup(response)
    if stamp is not None:
        try:
            parsed = datetime.fromisoformat(stamp)
        except ValueError as exc:
            raise ActionFailed(f"{url}: last_backup {stamp!r} is not an ISO 8601 time") from exc
        if parsed.tzinfo is None:
            raise ActionFailed(f"{url}: last_backup {stamp!r} has no UTC offset (write e.g. 2026-11-22T10:00:00Z)")
        return parsed.astimezone(UTC)
    header = response.headers.get("last-modified")
    if header is None:
        raise ActionFailed(f"{url}: no JSON 'last_backup' and no Last-Modified header: cannot tell the backup's age")
    try:
        return parsedate_to_datetime(header).astimezone(UTC)
    except (TypeError, ValueError) as exc:
        raise ActionFailed(f"{url}: Last-Modified {header!r} is not an HTTP date") from exc


def _json_last_backup(response: httpx.Response) -> str | None:
    try:
        body = json.loads(response.content)
    except ValueError:
        return None
    if isinstance(body, dict) and isinstance(body.get("last_backup"), str):
        return str(body["last_backup"])
    return None


def _as_int(name: str, value: object) -> int:
    if isinstance(value, bool):
        raise ActionFailed(f"{name} must be a whole number, got {value!r}")
    if isinstance(value, int):
        return value
    try:
        return int(str(value).strip())
    except ValueError:
        raise ActionFailed(f"{name} must be a whole number, got {value!r}") from None


def _as_float(name: str, value: object) -> float:
    if isinstance(value, bool):
        raise ActionFailed(f"{name} must be a number, got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value).strip())
    except ValueError:
        raise ActionFailed(f"{name} must be a number, got {value!r}") from None


def _reason(exc: BaseException) -> str:
    # OSError's str() repeats the errno ("[Errno 111] Connection refused"); people want the words.
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
