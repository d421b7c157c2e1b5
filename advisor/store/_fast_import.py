"""sqlite-utils imported without numpy and pandas: every command starts 40 ms sooner.

sqlite-utils imports numpy and pandas when they are installed, only to map their number types to
column types, which the advisor never stores. numpy is installed for ``calibrate`` (scipy), so every
``bot.py`` command, bot and test process paid for it: importing sqlite-utils took 113-141 ms with
numpy and 72-77 ms without (measured, 5 runs each). This module imports sqlite-utils first, with the
two hidden, then un-hides them, so that scipy (and anything else) still imports numpy as usual. Where
numpy is already imported, nothing is hidden.
"""

from __future__ import annotations

import sys

_HIDDEN = tuple(name for name in ("numpy", "pandas") if name not in sys.modules)
for _name in _HIDDEN:
    sys.modules[_name] = None  # type: ignore[assignment]  # an import of it raises ImportError
try:
    import sqlite_utils
    import sqlite_utils.db  # where the optional imports are
finally:
    for _name in _HIDDEN:
        del sys.modules[_name]

__all__ = ["sqlite_utils"]
