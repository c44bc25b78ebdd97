"""``outbox flush``: deliver the stakeholder messages Slack could not take earlier."""

from __future__ import annotations

import typer

from bcm.cli.output import FAILED, OK, JsonOption, Text, echo, out, print_json
from bcm.comms import FLUSH_POLICY, FlushReport, make_notifier
from bcm.config import load_settings
from bcm.store import OutboxRecord, Store

group = typer.Typer(help="The durable outbox of stakeholder messages.", no_args_is_help=True)


@group.command("flush")
def flush_cmd(json_out: JsonOption = False) -> None:
    """Deliver messages that Slack could not take earlier, in order, each once.

    Exit 1 when not everything is delivered: some messages are still pending (Slack did not take
    them yet), or some failed for good (a permanent Slack error; they are not retried). The output
    says which.
    """
    settings = load_settings()
    with Store.open(settings.database_url) as store:
        report = make_notifier(settings, store, policy=FLUSH_POLICY).flush()
        failed = store.list_messages(status="failed")
    because = []
    if report.pending:
        because.append(f"{report.pending} still pending")
    if failed:
        because.append(f"{len(failed)} failed for good")
    if json_out:
        print_json(
            {
                "delivered": report.delivered,
                "superseded": report.superseded,
                "failed_now": report.failed,
                "pending": report.pending,
                "error": report.error,
                "failed": [{"key": m.key, "kind": m.kind, "error": m.last_error} for m in failed],
                "exit_code": FAILED if because else OK,
                "because": because,
            }
        )
    else:
        _print_flush(report, failed)
    raise typer.Exit(FAILED if because else OK)


def _print_flush(report: FlushReport, failed: list[OutboxRecord]) -> None:
    echo(
        f"delivered {report.delivered}, superseded {report.superseded}, failed {report.failed}, "
        f"still pending {report.pending}"
    )
    if report.error:
        out.print(Text.assemble((f"stopped: {report.error}", "yellow"), " (messages stay queued, in order)"))
    for m in failed:
        out.print(Text(f"not deliverable: {m.key} ({m.kind}): {m.last_error}", style="red"))
    if failed:
        out.print(
            Text.assemble((f"exit 1: {len(failed)} failed for good", "red"), " (a permanent Slack error: not retried)")
        )
    if report.pending:
        out.print(
            Text.assemble((f"exit 1: {report.pending} still pending", "yellow"), " (`bcm outbox flush` again later)")
        )
