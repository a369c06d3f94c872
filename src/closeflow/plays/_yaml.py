"""Reading play files: YAML to plain data, with the source line of every key and item.

PyYAML resolves plain scalars by YAML 1.1, where ``no``, ``NO``, ``off``, ``y`` are booleans
(``country: NO`` becomes ``False``, ``on:`` becomes the key ``True``) and ``1:30`` is a number.
Play files are read with YAML 1.2's core schema instead: only ``true``/``false`` are booleans,
only ``null``/``~``/empty are null, numbers are plain decimal, ``0o``/``0x`` or floats; everything
else stays the text the user typed. Duplicate keys (PyYAML keeps the last one, silently) and
non-core tags (``!!python/…``) are refused with the line they are on.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from closeflow.close import ConfigError

__all__ = ["YAML_11_BOOLEANS", "Location", "PlayFileError", "YamlDocument", "load_yaml"]

Location = tuple[str | int, ...]

# Plain words YAML 1.1 would have read as booleans; they stay text here, and errors about a value
# that should have been a boolean mention them.
YAML_11_BOOLEANS = frozenset(
    w for word in ("yes", "no", "on", "off", "y", "n") for w in (word, word.upper(), word.capitalize())
)
# Anchors and aliases can expand a small file into a huge tree ("billion laughs").
_MAX_NODES = 200_000

_BASE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"

_CORE: dict[str, re.Pattern[str]] = {
    _NULL: re.compile(r"^(?:~|null|Null|NULL|)$"),
    _BOOL: re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    _INT: re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
    _FLOAT: re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
}


class _CoreLoader(_BASE_LOADER):  # type: ignore[misc]
    """PyYAML's (C) safe loader with YAML 1.2 core-schema resolution of plain scalars."""

    yaml_implicit_resolvers: dict[str | None, list[tuple[str, re.Pattern[str]]]] = {}  # noqa: RUF012


for _tag, _pattern in _CORE.items():
    _first = "~nN" if _tag == _NULL else ("tTfF" if _tag == _BOOL else "-+0123456789.")
    _CoreLoader.add_implicit_resolver(_tag, _pattern, list(_first))
# An empty plain scalar has no first character; PyYAML looks such scalars up under None.
_CoreLoader.yaml_implicit_resolvers[None] = [(_NULL, _CORE[_NULL])]


class PlayFileError(ConfigError):
    """A play or tool file that cannot be used: where (file and line), what, and how to fix it."""

    def __init__(self, path: str, line: int | None, message: str, fix: str | None = None) -> None:
        self.path = path
        self.line = line
        self.fix = fix
        where = f"{path}:{line}" if line is not None else path
        text = f"{where}: {message}" + (f"\n  fix: {fix}" if fix else "")
        super().__init__(text)
        # ``message`` stays the bare reason; str() is the full located text.
        self.message = message
        self.located = text

    def __str__(self) -> str:
        return self.located


@dataclass
class YamlDocument:
    """A loaded file: its plain data and the 1-based line of every mapping key and list item."""

    path: str
    data: Any
    lines: dict[Location, int] = field(default_factory=dict)

    def line_of(self, location: Sequence[str | int]) -> int | None:
        """The line of ``location`` or, when it was not written (a missing key), of its nearest parent."""
        loc = tuple(location)
        while loc:
            if loc in self.lines:
                return self.lines[loc]
            loc = loc[:-1]
        return self.lines.get((), None)

    def error(self, location: Sequence[str | int], message: str, fix: str | None = None) -> PlayFileError:
        return PlayFileError(self.path, self.line_of(location), message, fix)


def load_yaml(text: str, path: str) -> YamlDocument:
    """``text`` (a play file's content) as plain data; ``PlayFileError`` on anything unreadable."""
    try:
        root = yaml.compose(text, Loader=_CoreLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        reason = exc.problem or exc.context or "not valid YAML"
        raise PlayFileError(
            path, line, f"not valid YAML: {reason}", "check indentation, colons and quotes on this line"
        ) from None
    except yaml.YAMLError as exc:
        raise PlayFileError(path, None, f"not valid YAML: {exc}") from None
    document = YamlDocument(path, None)
    if root is None:
        raise PlayFileError(path, 1, "the file is empty", "start it with `kind: play` or `kind: tool`")
    document.lines[()] = root.start_mark.line + 1
    builder = _Builder(document)
    document.data = builder.build(root, ())
    return document


class _Builder:
    def __init__(self, document: YamlDocument) -> None:
        self.document = document
        self.count = 0

    def fail(self, node: yaml.Node, message: str, fix: str | None = None) -> PlayFileError:
        return PlayFileError(self.document.path, node.start_mark.line + 1, message, fix)

    def build(self, node: yaml.Node, loc: Location) -> Any:
        self.count += 1
        if self.count > _MAX_NODES:
            raise self.fail(node, f"the file expands to more than {_MAX_NODES} values (anchors and aliases?)")
        if isinstance(node, yaml.MappingNode):
            return self.mapping(node, loc)
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _SEQ:
                raise self.unknown_tag(node)
            items = []
            for index, item in enumerate(node.value):
                self.document.lines[(*loc, index)] = item.start_mark.line + 1
                items.append(self.build(item, (*loc, index)))
            return items
        assert isinstance(node, yaml.ScalarNode)
        return self.scalar(node)

    def mapping(self, node: yaml.MappingNode, loc: Location) -> dict[str, Any]:
        if node.tag != _MAP:
            raise self.unknown_tag(node)
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = self.build(key_node, loc)
            if isinstance(key, bool | int | float) or key is None:
                key = key_node.value  # keys are names: `200:` or `true:` mean the text the user wrote
            if not isinstance(key, str):
                raise self.fail(key_node, "a key must be plain text, not a list or mapping")
            if key == "<<":
                raise self.fail(key_node, "merge keys (<<) are not supported", "write the keys out in full")
            if key in result:
                first = self.document.lines[(*loc, key)]
                raise self.fail(
                    key_node,
                    f'the key "{key}" appears twice (first on line {first})',
                    "remove or rename one of them; YAML would silently keep only the last",
                )
            self.document.lines[(*loc, key)] = key_node.start_mark.line + 1
            result[key] = self.build(value_node, (*loc, key))
        return result

    def scalar(self, node: yaml.ScalarNode) -> Any:
        value: str = node.value
        tag = node.tag
        if tag == _STR:
            return value
        if tag not in _CORE:
            raise self.unknown_tag(node)
        if not _CORE[tag].match(value):
            raise self.fail(node, f'"{value}" is not a valid {tag.rsplit(":", 1)[-1]}')
        if tag == _NULL:
            return None
        if tag == _BOOL:
            return value.lower() == "true"
        if tag == _INT:
            if value.startswith(("0o", "0x")):
                return int(value[2:], 8 if value[1] == "o" else 16)
            return int(value)
        lowered = value.lower()
        if lowered.endswith("nan"):
            return math.nan
        if lowered.endswith("inf"):
            return -math.inf if value.startswith("-") else math.inf
        return float(value)

    def unknown_tag(self, node: yaml.Node) -> PlayFileError:
        return self.fail(
            node,
            f"the YAML tag {node.tag} is not allowed in play files",
            "remove the tag; play files hold plain text, numbers, true/false, null, lists and mappings",
        )
