"""Read component schemas from Close's OpenAPI document and check responses against them.

The project has no YAML dependency, and the schemas needed are a plain subset (mappings, lists,
scalars, ``$ref``, folded descriptions), so a small indentation parser is enough. ``check``
covers what the emulator must honour: ``required`` keys, declared ``type``s (including
``[string, 'null']`` unions), ``oneOf``, array items and ``date-time`` formats.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?([+-]\d{2}:\d{2}|Z)?$")
_TYPES: dict[str, Any] = {
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "array": list,
    "object": dict,
    "null": type(None),
}


def openapi_path() -> Path | None:
    candidates = [os.environ.get("CLOSE_OPENAPI"), str(REPO.parent / "shared" / "close-openapi.yml")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def load_schemas(path: Path, names: set[str]) -> dict[str, Any]:
    """The named component schemas (and, transitively, those they reference)."""
    lines = path.read_text().splitlines()
    starts = {line[4:-1]: i for i, line in enumerate(lines) if re.match(r"^    [A-Za-z0-9_]+:$", line)}
    found: dict[str, Any] = {}
    todo = set(names)
    while todo:
        name = todo.pop()
        start = starts[name] + 1
        end = start
        while end < len(lines) and (not lines[end].strip() or _indent(lines[end]) > 4):
            end += 1
        schema, _ = _block(lines[start:end], 0, 6)
        found[name] = schema
        todo |= {ref for ref in re.findall(r"#/components/schemas/(\w+)", "\n".join(lines[start:end]))} - set(
            found
        )
    return found


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _scalar(text: str) -> Any:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return {"true": True, "false": False, "null": None}.get(text, text)


def _block(lines: list[str], i: int, indent: int) -> tuple[Any, int]:
    while i < len(lines) and not lines[i].strip():
        i += 1
    if i < len(lines) and lines[i].strip().startswith("- "):
        items = []
        while i < len(lines) and _indent(lines[i]) == indent and lines[i].strip().startswith("- "):
            item = lines[i].strip()[2:]
            if re.match(r"^[$\w'\"-]+:( |$)", item):
                lines[i] = " " * (indent + 2) + item
                value, i = _block(lines, i, indent + 2)
            else:
                value, i = _scalar(item), i + 1
            items.append(value)
        return items, i
    mapping: dict[str, Any] = {}
    while i < len(lines) and _indent(lines[i]) == indent and not lines[i].strip().startswith("- "):
        key, _, rest = lines[i].strip().partition(":")
        key, rest = _scalar(key), rest.strip()
        i += 1
        if rest in (">-", ">", "|", "|-"):
            while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > indent):
                i += 1
            mapping[key] = ""
        elif rest:
            mapping[key] = [] if rest == "[]" else ({} if rest == "{}" else _scalar(rest))
        elif i < len(lines):
            mapping[key], i = _block(lines, i, _indent(lines[i]))
    return mapping, i


def check(value: Any, schema: dict[str, Any], schemas: dict[str, Any], where: str = "$") -> list[str]:
    """Every way ``value`` breaks ``schema``, as readable strings (empty when it conforms)."""
    if "$ref" in schema:
        return check(value, schemas[schema["$ref"].rsplit("/", 1)[1]], schemas, where)
    if "oneOf" in schema:
        results = [check(value, option, schemas, where) for option in schema["oneOf"]]
        return [] if any(not r for r in results) else [f"{where}: matches no oneOf option ({results})"]
    problems: list[str] = []
    declared = schema.get("type")
    if declared is not None:
        kinds = declared if isinstance(declared, list) else [declared]
        ok = any(
            isinstance(value, _TYPES[k]) and not (k in ("integer", "number") and isinstance(value, bool))
            for k in kinds
        )
        if not ok:
            return [f"{where}: {value!r} is not {kinds}"]
    if schema.get("format") == "date-time" and isinstance(value, str) and not _DATE_TIME.match(value):
        problems.append(f"{where}: {value!r} is not a date-time")
    if isinstance(value, dict):
        problems += [
            f"{where}: missing required {key!r}" for key in schema.get("required", []) if key not in value
        ]
        for key, sub in (schema.get("properties") or {}).items():
            if key in value:
                problems += check(value[key], sub, schemas, f"{where}.{key}")
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            problems += check(item, schema["items"], schemas, f"{where}[{index}]")
    return problems
