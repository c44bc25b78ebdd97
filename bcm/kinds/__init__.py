"""The step kinds, one module each, and the table the engine, the loader and the CLI consult.

=========  =========================================  ===============  ==================
kind       module                                     waits for        exercise default
=========  =========================================  ===============  ==================
run        :mod:`bcm.kinds.run`                       -                simulate
http       :mod:`bcm.kinds.http`                      -                simulate
call       :mod:`bcm.kinds.call`                      -                simulate
notify     :mod:`bcm.kinds.notify`                    -                run
approve    :mod:`bcm.kinds.approve`                   a person         run
manual     :mod:`bcm.kinds.manual`                    a person         run
wait       :mod:`bcm.kinds.wait`                      -                run
=========  =========================================  ===============  ==================

Adding a kind: a module declaring its ``KIND`` (:class:`bcm.kinds.base.StepKindDef`), its line
below, its field on :class:`bcm.spec.models.Step`, its name in :data:`bcm.vocabulary.StepKind`,
then ``make schema``.
"""

from __future__ import annotations

from bcm.kinds import approve, call, http, manual, notify, run, wait
from bcm.kinds.base import ActionEnv, StepKindDef, StepOutcome
from bcm.vocabulary import STEP_KINDS

_DEFINED = (run.KIND, http.KIND, call.KIND, notify.KIND, approve.KIND, manual.KIND, wait.KIND)

#: The table: every step kind by name, in the order of :data:`bcm.vocabulary.STEP_KINDS`.
KINDS: dict[str, StepKindDef] = {kind.name: kind for name in STEP_KINDS for kind in _DEFINED if kind.name == name}

#: The kinds that wait for a person (approve, manual).
PERSON_KINDS: frozenset[str] = frozenset(name for name, kind in KINDS.items() if kind.waits_for_person)

__all__ = ["KINDS", "PERSON_KINDS", "ActionEnv", "StepKindDef", "StepOutcome"]
