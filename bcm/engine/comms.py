"""A run's communication: incident channel, status board, step updates, requests, reminders.

The runner calls these at each change; every message has a deterministic key, so a retried step
or a resumed run never says the same thing twice.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

from bcm import clock
from bcm.clock import Clock
from bcm.comms.messages import (
    approval_blocks,
    board_message,
    context,
    decision_message,
    format_duration_s,
    section,
    step_update_text,
)
from bcm.comms.notifier import Message, Notifier, exercise_text
from bcm.engine.context import RunContext
from bcm.engine.plan import Plan
from bcm.errors import TemplateRenderError
from bcm.spec.models import Step
from bcm.templates import escape_mrkdwn, render

COMMANDER_ROLE = "incident_commander"


class RunComms:
    """Tells people about one run through a Notifier."""

    def __init__(self, ctx: RunContext, plan: Plan, notifier: Notifier, *, now: Clock = clock.now) -> None:
        self.ctx = ctx
        self.plan = plan
        self.notifier = notifier
        self.now = now
        self.status = "running"
        self.notes: dict[str, str] = {}
        self.took: dict[str, float] = {}
        self.milestones: list[tuple[str, datetime]] = []
        self.last_update: datetime | None = None
        self.last_update_what: str | None = None
        self._lock = threading.Lock()
        self._watch: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def run_id(self) -> str:
        return self.ctx.run.id

    @property
    def exercise(self) -> bool:
        return self.ctx.exercise

    def _send(self, message: Message) -> None:
        self.notifier.send(message)

    # ------------------------------------------------------------------ board

    def board(self) -> dict[str, Any]:
        """The status board's content: run, runbook, phases with their steps, milestones."""
        rb = self.ctx.runbook
        phases = []
        for phase in ("communication", "response", "recovery"):
            steps = [p for p in self.plan.steps if p.phase == phase]
            if not steps:
                continue
            phases.append(
                {
                    "name": phase,
                    "steps": [
                        {
                            "id": p.id,
                            "label": p.step.title or "",
                            "status": self.ctx.steps[p.id].status,
                            "took": format_duration_s(took) if (took := self.took.get(p.id)) is not None else "",
                            "note": self.notes.get(p.id, ""),
                        }
                        for p in steps
                    ],
                }
            )
        return {
            "run": {
                "id": self.run_id,
                "short_id": self.ctx.run.short_id,
                "mode": self.ctx.run.mode,
                "status": self.status,
                "triggered_by": escape_mrkdwn(self.ctx.run.triggered_by),
                "started": f"{self.ctx.run.started_at:%Y-%m-%d %H:%M}",
            },
            "runbook": {"id": rb.id, "title": rb.title, "severity": rb.severity},
            "services": list(rb.services),
            "phases": phases,
            "waiting": [sid for sid, s in self.ctx.steps.items() if s.status == "waiting"],
            "milestones": [{"name": name, "at": f"{at:%H:%M}"} for name, at in self.milestones],
        }

    def open(self) -> None:
        """Open the incident channel (real mode, when the runbook names one) and post the board."""
        rb = self.ctx.runbook
        if not self.exercise and rb.communication.channel:
            try:
                name = render(rb.communication.channel, self.ctx.template_context()).strip().lower()
            except TemplateRenderError:
                name = f"inc-{self.ctx.run.short_id}"
            self._send(
                Message(
                    key=f"{self.run_id}/channel",
                    run_id=self.run_id,
                    kind="open_channel",
                    text=rb.title,
                    channel_name=_channel_name(name),
                    topic=f"{rb.severity.upper()} {rb.title} — run {self.ctx.run.short_id} — bcm status "
                    f"{self.ctx.run.short_id}",
                    invite=tuple(self._stakeholder_users()),
                )
            )
        self._send(board_message(f"{self.run_id}/board", "board", self.board(), exercise=self.exercise))

    def _stakeholder_users(self) -> list[str]:
        rb = self.ctx.runbook
        roles = {rb.owner, COMMANDER_ROLE}
        for _, step in rb.steps(include_prevention=False):
            if step.notify:
                roles.update(step.notify.to)
            if step.person_role:
                roles.add(step.person_role)
        users: list[str] = []
        for role_id in sorted(roles):
            role = self.ctx.catalog.roles.get(role_id)
            for person in [*role.members, *role.alternates] if role else []:
                if person.slack_user and person.slack_user not in users:
                    users.append(person.slack_user)
        return users

    def step_changed(self, step_id: str, status: str, *, attempts: int, took: float | None, note: str | None) -> None:
        """Update the board in place and, when the step finished, say so in the board's thread."""
        with self._lock:
            if took is not None:
                self.took[step_id] = took
            if note:
                self.notes[step_id] = escape_mrkdwn(note)[:200]
            board = self.board()
        tag = f"{step_id}/{status}/{attempts}"
        self._send(board_message(f"{self.run_id}/board/{tag}", "board_update", board, exercise=self.exercise))
        if status in ("running", "pending"):
            return
        planned = self.plan.get(step_id)
        text = step_update_text(step_id, planned.step.label, status, took, note)
        self._send(
            Message(
                key=f"{self.run_id}/thread/{tag}",
                run_id=self.run_id,
                kind="thread",
                step_id=step_id,
                text=exercise_text(text, exercise=self.exercise),
                exercise=self.exercise,
            )
        )

    def milestone(self, name: str, at: datetime) -> None:
        """Show a milestone on the board (the next board update carries it)."""
        with self._lock:
            if all(n != name for n, _ in self.milestones):
                self.milestones.append((name, at))

    def finished(self, status: str, error: str | None) -> None:
        """The final board and a closing line in the thread."""
        self.stop_watch()
        with self._lock:
            self.status = status
            board = self.board()
        self._send(board_message(f"{self.run_id}/board/final/{status}", "board_update", board, exercise=self.exercise))
        text = f"Run {self.ctx.run.short_id} {status}" + (f": {escape_mrkdwn(error)}" if error else "")
        self._send(
            Message(
                key=f"{self.run_id}/thread/final/{status}",
                run_id=self.run_id,
                kind="thread",
                text=exercise_text(text, exercise=self.exercise),
                exercise=self.exercise,
            )
        )
        self.notifier.flush()

    def set_status(self, status: str) -> None:
        """Keep the board's run status in step with the run (running / waiting)."""
        with self._lock:
            self.status = status

    # ------------------------------------------------------------------ people

    def notify(self, step: Step, text: str) -> Message:
        """A notify step's message (the text is already rendered with escaped values)."""
        message = Message(
            key=f"{self.run_id}/{step.id}/notify",
            run_id=self.run_id,
            kind="notify",
            step_id=step.id,
            to=tuple(step.notify.to) if step.notify else (),
            text=exercise_text(text, exercise=self.exercise),
            exercise=self.exercise,
            blocks=(
                section(exercise_text(text, exercise=self.exercise)),
                context(
                    f"{self.ctx.runbook.title} · {self.plan.get(step.id).phase} · {step.label} · "
                    f"run {self.ctx.run.short_id} · to " + ", ".join(step.notify.to if step.notify else ())
                ),
            ),
        )
        self.stakeholder_update(step.id)
        return message

    def stakeholder_update(self, what: str) -> None:
        """Note that stakeholders were just updated (the cadence clock restarts)."""
        with self._lock:
            self.last_update = self.now()
            self.last_update_what = what

    def request_decision(self, step: Step) -> None:
        """Ask the role for a decision: buttons in Slack, the command line in the text."""
        role_id = step.person_role or ""
        role = self.ctx.catalog.roles.get(role_id)
        holders = ", ".join(p.name for p in [*role.members, *role.alternates]) if role else role_id
        try:
            prompt = render(step.person_prompt, self.ctx.template_context(escape=escape_mrkdwn))
        except TemplateRenderError as exc:
            prompt = f"(template failed: {escape_mrkdwn(exc.reason)})"
        short = self.ctx.run.short_id
        verb = "Approval needed" if step.approve else "Task for you"
        text = (
            f"{verb} ({role_id}) in {self.ctx.runbook.title}: {prompt}\n"
            f"Answer with: bcm approve {short} {step.id} --by YOU   (or --reject)"
        )
        self._send(
            Message(
                key=f"{self.run_id}/{step.id}/request",
                run_id=self.run_id,
                kind="approval_request",
                step_id=step.id,
                to=(role_id,),
                text=exercise_text(text, exercise=self.exercise),
                exercise=self.exercise,
                blocks=approval_blocks(
                    run_id=self.run_id,
                    step_id=step.id,
                    role=role_id,
                    holders=holders,
                    prompt=prompt,
                    approve=step.approve is not None,
                    title=self.ctx.runbook.title,
                    exercise=self.exercise,
                ),
            )
        )

    def decided(self, step: Step, *, decision: str, by: str, note: str | None, at: datetime | None = None) -> None:
        """Edit the request to say who decided, and when (whether by button or `bcm approve`)."""
        try:
            prompt = render(step.person_prompt, self.ctx.template_context(escape=escape_mrkdwn))
        except TemplateRenderError:
            prompt = step.person_prompt
        self._send(
            decision_message(
                run_id=self.run_id,
                step_id=step.id,
                prompt=prompt,
                decision=decision,
                by=by,
                note=note,
                at=at or self.now(),
                exercise=self.exercise,
            )
        )

    # ------------------------------------------------------------------ cadence

    def start_watch(self, *, check_every_s: float | None = None) -> None:
        """Remind the commander whenever the cadence passes without a stakeholder update."""
        cadence = self.ctx.runbook.communication.cadence
        if cadence is None or self._watch is not None:
            return
        with self._lock:
            if self.last_update is None:
                self.last_update = self.ctx.run.started_at
        interval = check_every_s or max(1.0, min(30.0, cadence.total_seconds() / 4))
        self._watch = threading.Thread(
            target=self._watch_loop, args=(cadence, interval), daemon=True, name=f"bcm-cadence-{self.ctx.run.short_id}"
        )
        self._watch.start()

    def stop_watch(self) -> None:
        """Stop the cadence watch (the run ended)."""
        self._stop.set()
        if self._watch is not None:
            self._watch.join(5)

    def _watch_loop(self, cadence: timedelta, interval: float) -> None:
        while not self._stop.wait(interval):
            self.check_cadence(cadence)

    def check_cadence(self, cadence: timedelta) -> bool:
        """Send a reminder when the last stakeholder update is older than the cadence."""
        with self._lock:
            last, what = self.last_update, self.last_update_what
        if last is None or self.now() - last < cadence:
            return False
        silent = self.now() - last
        when = f"{last:%H:%M} UTC" + (f" ({what})" if what else " (the run started)")
        text = (
            f"No stakeholder update in {self.ctx.runbook.title} for {format_duration_s(silent.total_seconds())}: "
            f"the last went out at {when}. The cadence is {format_duration_s(cadence.total_seconds())}: send an update."
        )
        role = COMMANDER_ROLE if COMMANDER_ROLE in self.ctx.catalog.roles else self.ctx.runbook.owner
        self._send(
            Message(
                # One reminder per cadence period of silence.
                key=f"{self.run_id}/reminder/{last.isoformat()}/{int(silent / cadence)}",
                run_id=self.run_id,
                kind="reminder",
                to=(role,),
                text=exercise_text(text, exercise=self.exercise),
                exercise=self.exercise,
            )
        )
        return True


def _channel_name(name: str) -> str:
    """Slack channel names: lowercase letters, digits, hyphens and underscores, at most 80."""
    cleaned = "".join(c if c.isalnum() or c in "-_" else "-" for c in name.lower())
    return cleaned.strip("-")[:80] or "incident"
