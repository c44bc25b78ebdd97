"""What the person kinds (approve, manual) share: they ask a role and wait for its answer.

A person step is not executed: the runner asks the role (:attr:`StepKindDef.person` says where
the role, the prompt and the timeout are) and waits for the decision in the store.
"""

from __future__ import annotations

from bcm.kinds.base import PersonAsk


def person_ask(kind: str, prompt_key: str) -> PersonAsk:
    """The paths of a person kind whose mapping has ``by``, ``timeout`` and the prompt at ``prompt_key``."""
    return PersonAsk(role=(kind, "by"), prompt=(kind, prompt_key), timeout=(kind, "timeout"))
