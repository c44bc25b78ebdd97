"""The runbook JSON Schema, generated from the models (committed as runbooks/runbook.schema.json)."""

from __future__ import annotations

import json

from bcm.spec.models import Runbook


def runbook_schema() -> dict[str, object]:
    """The JSON Schema of runbook format version 1, for editors and CI."""
    schema = Runbook.model_json_schema(by_alias=True)
    schema["$id"] = "https://github.com/bcm-project/bcm/runbooks/runbook.schema.json"
    return schema


def runbook_schema_text() -> str:
    """The schema as the committed file holds it: sorted keys, two-space indent, final newline."""
    return json.dumps(runbook_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
