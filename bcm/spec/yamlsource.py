"""YAML loading that remembers where every node came from and refuses duplicate keys.

PyYAML's ``safe_load`` silently keeps the last of two equal keys; a runbook with two ``timeout``
keys would run with whichever came last. We compose the node graph (libyaml's C composer when
available, for speed) and build plain Python data ourselves, recording the line and column of
every key and value in a source map keyed by the path of the node.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import yaml

from bcm.spec.problems import Path_, Problem, dotted

try:  # libyaml is an order of magnitude faster; fall back to the pure-Python composer.
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on how PyYAML was built
    _Loader = yaml.SafeLoader

_constructor = yaml.SafeLoader(b"")  # only used to turn scalar nodes into Python values


@dataclass
class SourceMap:
    """Positions (1-based line, column) of values and keys, by node path."""

    values: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    # Template-bearing scalars written as block scalars start on the line after the indicator.
    block_scalars: set[Path_] = field(default_factory=set)
    # Values the reader reported and replaced (an unquoted template): nothing more is said of them.
    reported: set[Path_] = field(default_factory=set)

    def locate(self, path: Path_, *, key: bool = False) -> tuple[int, int]:
        """Return the best known position for ``path``: itself, else its nearest ancestor."""
        table = self.keys if key else self.values
        probe = path
        while True:
            if probe in table:
                return table[probe]
            if key and probe in self.values:
                return self.values[probe]
            if not probe:
                return (1, 1)
            probe = probe[:-1]
            table = self.values


@dataclass
class YamlDocument:
    """The data of one YAML file and where each part came from."""

    data: object
    source: SourceMap


def load_yaml(text: str, file: str) -> tuple[YamlDocument | None, list[Problem]]:
    """Parse ``text`` into data and a source map.

    Args:
        text: the YAML source.
        file: the file name to put in problems.

    Returns:
        The document (None when the YAML could not be parsed) and the problems found: syntax
        errors, several documents in one file, duplicate keys, non-string keys.
    """
    problems: list[Problem] = []
    try:
        nodes = list(yaml.compose_all(text, Loader=_Loader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        what = exc.problem or exc.context or "invalid YAML"
        if exc.problem and exc.context and exc.context_mark and exc.context_mark is not mark:
            ctx = exc.context_mark
            what += f" ({exc.context} that starts at line {ctx.line + 1}, column {ctx.column + 1})"
        hint = _syntax_hint(exc, text.splitlines())
        problems.append(Problem(file, line, col, "", f"YAML syntax error: {what}{hint}"))
        return None, problems
    except yaml.YAMLError as exc:
        problems.append(Problem(file, 0, 0, "", f"YAML error: {exc}"))
        return None, problems
    if not nodes:
        problems.append(Problem(file, 1, 1, "", "the file is empty: a runbook starts with 'version: 1'"))
        return None, problems
    if len(nodes) > 1:
        extra = nodes[1]
        problems.append(
            Problem(
                file,
                extra.start_mark.line + 1,
                extra.start_mark.column + 1,
                "",
                "a file holds one document: remove the second '---' or split the file",
            )
        )
    source = SourceMap()
    data = _build(nodes[0], (), source, problems, file)
    return YamlDocument(data, source), problems


_QUOTE_TEMPLATE = "a value that starts with '{{' must be quoted: \"{{ ... }}\""
_HINTS = {
    "template": f" ({_QUOTE_TEMPLATE})",
    "indentation": (
        " (check the indentation: the keys of one mapping, and the '-' items of one list, start in the same column)"
    ),
    "tab": " (tabs are not allowed for indentation: use spaces)",
    "colon": " (a value that contains ': ' must be quoted)",
    "after value": " (text follows a quoted value or a closing bracket on the same line: quote the whole value)",
}
# A plain `{{` where a value starts: at a `- ` list item, after `key: `, or after `[` or `,` in a flow list.
_TEMPLATE_VALUE = re.compile(r"(?:^\s*(?:-\s+)*|:\s+|\[(?:[^\]]*,)?\s*)\{\{")
_QUOTED = re.compile(r"\"(?:[^\"\\]|\\.)*\"|'(?:[^']|'')*'")
# A `key: ` (maybe after list dashes) at the start of a line.
_KEY = re.compile(r"^\s*(?:-\s+)*[^\s#'\"][^:#]*:\s")


def _syntax_hint(exc: yaml.MarkedYAMLError, lines: list[str]) -> str:
    """A hint for the mistakes that commonly lie behind what libyaml reports.

    libyaml reports where parsing stopped, which is seldom where the mistake is, so the offending
    line is read again. An unquoted ``{{`` starting a value reads as a flow mapping and parsing
    stops after it ("did not find expected key"); a line indented differently from its block
    stops at its first character ("did not find expected key / '-' indicator") or, when it is
    indented deeper under a plain value, at its key's colon ("mapping values are not allowed").
    """
    mark = exc.problem_mark
    if mark is None or not 0 <= mark.line < len(lines):
        return ""
    current = lines[mark.line]
    problem = exc.problem or ""
    if "tab" in problem or current[mark.column : mark.column + 1] == "\t":
        return _HINTS["tab"]
    before = _QUOTED.sub('""', current[: mark.column])
    if _TEMPLATE_VALUE.search(before):
        return _HINTS["template"]
    if problem == "mapping values are not allowed in this context":
        # The colon of a second `key:` on one line is inside a value; the line's first is a key
        # indented deeper than the plain value above it allows.
        return _HINTS["colon"] if _KEY.match(before) else _HINTS["indentation"]
    if problem.startswith("did not find expected") and (exc.context or "").startswith("while parsing a block"):
        return _HINTS["indentation"] if not before.strip() else _HINTS["after value"]
    return ""


def _build(node: yaml.Node, path: Path_, source: SourceMap, problems: list[Problem], file: str) -> object:
    source.values[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if _is_unquoted_template(node):
        # `a: {{ x }}` reads as a mapping inside a mapping: report it once, keep going as text.
        problems.append(_at(file, node, dotted(path), _QUOTE_TEMPLATE))
        source.reported.add(path)
        return "(unquoted template)"
    if isinstance(node, yaml.MappingNode):
        result: dict[str, object] = {}
        seen: dict[object, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                problems.append(
                    _at(
                        file,
                        key_node,
                        dotted(path),
                        "YAML merge keys ('<<') are not supported: write keys out",
                    )
                )
                continue
            if isinstance(key_node, yaml.MappingNode) and isinstance(value_node, yaml.ScalarNode):
                # `a: {{ x }}` reads as a flow mapping inside a flow mapping: an unquoted template.
                problems.append(
                    _at(
                        file,
                        key_node,
                        dotted(path),
                        _QUOTE_TEMPLATE,
                    )
                )
                continue
            key = _scalar(key_node) if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str | int) or isinstance(key, bool):
                problems.append(_at(file, key_node, dotted(path), "keys must be plain strings"))
                continue
            key = str(key)
            if key in seen:
                problems.append(
                    _at(
                        file,
                        key_node,
                        dotted(path + (key,)),
                        f"duplicate key '{key}' (first defined on line {seen[key]}): remove one",
                    )
                )
                continue
            seen[key] = key_node.start_mark.line + 1
            source.keys[path + (key,)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            result[key] = _build(value_node, path + (key,), source, problems, file)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, path + (i,), source, problems, file) for i, item in enumerate(node.value)]
    if isinstance(node, yaml.ScalarNode) and node.style in ("|", ">"):
        source.block_scalars.add(path)
    return _scalar(node)


def _is_unquoted_template(node: yaml.Node) -> bool:
    return (
        isinstance(node, yaml.MappingNode)
        and node.flow_style is True
        and len(node.value) == 1
        and isinstance(node.value[0][0], yaml.MappingNode)
        and node.value[0][0].flow_style is True
    )


_STR_TAG = "tag:yaml.org,2002:str"


def _scalar(node: yaml.Node) -> object:
    if node.tag == _STR_TAG:  # most scalars: skip the constructor's dispatch
        return node.value
    try:
        return _constructor.construct_object(node, deep=True)
    except (ValueError, yaml.YAMLError):
        # e.g. `2026-13-01` is resolved as a timestamp and fails to construct: keep the text so
        # the model reports it in its own words ("expected a date like ...") with its position.
        return node.value


def _at(file: str, node: yaml.Node, where: str, message: str) -> Problem:
    return Problem(file, node.start_mark.line + 1, node.start_mark.column + 1, where, message)
