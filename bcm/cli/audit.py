"""``audit verify`` and ``audit export``: the tamper-evident audit log, checked and handed to auditors."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from bcm.cli.output import FAILED, OK, JsonOption, echo, print_json
from bcm.config import load_settings
from bcm.errors import InputError
from bcm.spec.problems import display_path
from bcm.store import Store

group = typer.Typer(
    help="The tamper-evident audit log: verify the chain, export evidence.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@group.command("verify")
def verify_cmd(json_out: JsonOption = False) -> None:
    """Recompute the audit chain; name the first entry changed or removed (exit 1 when broken)."""
    with Store.open(load_settings().database_url) as store:
        result = store.verify_audit()
    if json_out:
        print_json(
            {
                "ok": result.ok,
                "checked": result.checked,
                "first_broken_seq": result.first_broken_seq,
                "reason": result.reason,
                "head_hash": result.head_hash,
            }
        )
    elif result.ok:
        head = f"; head hash {result.head_hash} (keep it: removing entries from the end is only visible against it)"
        echo(f"audit chain intact: {result.checked} entries{head if result.head_hash else ''}")
    else:
        echo(f"audit chain broken at entry {result.first_broken_seq}: {result.reason}", stderr=True)
    raise typer.Exit(OK if result.ok else FAILED)


@group.command("export")
def export_cmd(
    run: Annotated[
        str | None, typer.Option("--run", help="Only this run's entries (id or 8-character prefix).")
    ] = None,
    out_file: Annotated[Path | None, typer.Option("--out", help="Write to this file instead of stdout.")] = None,
) -> None:
    """Write audit entries with their hashes as JSON lines: evidence for auditors."""
    with Store.open(load_settings().database_url) as store:
        run_id = store.get_run(run).id if run is not None else None
        entries = store.export_audit(run_id=run_id)
    # JSON lines, keys sorted and text as written: the evidence format, not the --json convention.
    text = "".join(json.dumps(entry, sort_keys=True, ensure_ascii=False) + "\n" for entry in entries)
    if out_file is None:
        sys.stdout.write(text)
        return
    try:
        out_file.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"--out {out_file}: cannot write it: {exc.strerror}") from None
    echo(f"wrote {len(entries)} audit entries to {display_path(out_file)}", stderr=True)
