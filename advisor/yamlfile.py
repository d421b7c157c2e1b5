"""Reading the YAML files (the dialog, its advice rules, cases and labelled phrases): ``read_yaml``.

A key given twice in one mapping is refused instead of silently keeping the last, YAML nested too
deep or too large with its aliases (which would crash or stall the YAML library) is refused before
it is built, and every way a file can fail is reported as one ``file: line N: problem`` line in a
``DialogError``, the error of every dialog or advice file that cannot be used. Both are importable
from ``advisor.dialog`` too.
"""

from __future__ import annotations

from collections.abc import Hashable
from pathlib import Path
from typing import Any

import yaml

from advisor import AdvisorError

MAX_DEPTH = 40
"""The deepest nesting a YAML file may have (dialogs/advice.yaml: 11 levels)."""
MAX_NODES = 100_000
"""The most nodes a YAML file may hold, each alias counted as all it repeats (advice.yaml: 1,390,
understanding.yaml: 13,448)."""


class DialogError(AdvisorError):
    """A dialog or advice file that cannot be used; ``errors`` lists every problem found."""

    def __init__(self, errors: list[str]):
        self.errors = errors
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(errors[0] + more)


class _UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """A SafeLoader that refuses a key given twice in one mapping (YAML would keep the last).

    libyaml's parser where PyYAML has it: the dialog and its rules load in 9 ms instead of 79
    (measured), and every bot process and every `bot.py` command reads them at start."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):
                raise yaml.constructor.ConstructorError(None, None, "found an unhashable key", key_node.start_mark)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key '{key}'", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep)


def yaml_shape(content: bytes) -> tuple[str, int] | None:
    """("depth", MAX_DEPTH) or ("nodes", MAX_NODES) for YAML nested too deep or too large with its
    aliases repeated, found from the parser's events before anything is built: PyYAML builds nodes
    recursively in C (50,000 nested brackets, 100 KB, end the process with a segmentation fault), and
    an alias repeats a whole subtree each time the rules are walked. None for anything else, a YAML
    error included (read_yaml reports those, with their line)."""
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        return None
    nodes = 0
    sizes: dict[str, int] = {}  # anchor -> nodes it stands for
    open_: list[tuple[str | None, int]] = []  # collections open: (anchor, nodes before them)
    try:
        for event in yaml.parse(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
            if isinstance(event, yaml.AliasEvent):
                nodes += sizes.get(str(event.anchor), 1)
            elif isinstance(event, yaml.ScalarEvent | yaml.CollectionStartEvent):
                nodes += 1
                if isinstance(event, yaml.CollectionStartEvent):
                    open_.append((event.anchor, nodes - 1))
                    if len(open_) > MAX_DEPTH:
                        return "depth", MAX_DEPTH
                elif event.anchor:
                    sizes[event.anchor] = 1
            elif isinstance(event, yaml.CollectionEndEvent):
                anchor, before = open_.pop()
                if anchor:
                    sizes[anchor] = nodes - before
            if nodes > MAX_NODES:
                return "nodes", MAX_NODES
    except yaml.YAMLError:
        return None
    return None


def read_yaml(path: Path) -> Any:
    """Read a YAML file, turning every way it can fail into a one-line DialogError."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise DialogError([f"{path}: cannot read: {error.strerror or error}"]) from None
    except UnicodeDecodeError:
        raise DialogError([f"{path}: not UTF-8 text"]) from None
    shape = yaml_shape(text.encode("utf-8"))
    if shape == ("depth", MAX_DEPTH):
        raise DialogError([f"{path}: nested deeper than {MAX_DEPTH} levels: not a file the advisor reads"])
    if shape is not None:
        raise DialogError([f"{path}: more than {MAX_NODES:,} values (each alias counted as all it repeats): "
                           "not a file the advisor reads"])
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error)
        raise DialogError([f"{path}:{where}: {problem}"]) from None
