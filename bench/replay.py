"""How long ``python bot.py replay`` takes over a store of N completed conversations.

    .venv/bin/python bench/replay.py              # 3,000 conversations
    .venv/bin/python bench/replay.py --count 10000

The store is filled with the personas of ``tests/personas.py`` (completed through the console), each
copied until there are N rows, every copy with other answers to the questions the rules read most
(process, horizon, trigger, hours), so that the replay takes as many paths as real traffic would.
Then it times the ``replay`` command as a person runs it (a new process, JSON out), against the current
rules (``--baseline current``: each conversation advised twice, since the copies' stored advice is not
their answers'), once with the current rules (no change) and once with a changed weight; it prints
the wall time and how many conversations changed.
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from advisor.channels.console import Console  # noqa: E402
from advisor.service import DIALOGS_DIR, build_service  # noqa: E402
from tests.personas import PERSONAS  # noqa: E402

VARIANTS = list(itertools.product(["documented", "partly", "informal"], ["quarter", "year", "multi_year", "long_term"],
                                  ["recurring_problem", "cost_pressure", "growth", "planning_ahead"], [2, 8, 20, 40]))


def fill(db: Path, count: int) -> None:
    service = build_service(db)
    try:
        for i, lines in enumerate(PERSONAS.values()):
            Console(service, io.StringIO("\n".join(lines) + "\n"), io.StringIO(), interactive=False).run(f"p{i}")
        database = service.store.db
        completed = [dict(r) for r in database.query("SELECT * FROM conversations WHERE status = 'completed'")]
        rows = []
        for n in range(count - len(completed)):
            row = dict(completed[n % len(completed)])
            answers = json.loads(row["answers"])
            process, horizon, trigger, hours = VARIANTS[n % len(VARIANTS)]
            answers.update(process=process, horizon=horizon, trigger=trigger, hours=hours)
            row.update(id=None, user_id=f"bench{n}", answers=json.dumps(answers))
            rows.append(row)
        database["conversations"].insert_all(rows, batch_size=500)
    finally:
        service.store.close()


def timed(db: Path, rules: Path) -> tuple[float, dict]:
    started = time.perf_counter()
    result = subprocess.run([sys.executable, str(ROOT / "bot.py"), "--db", str(db), "replay", "--rules", str(rules),
                             "--format", "json", "--baseline", "current"], capture_output=True, text=True, check=True)
    return time.perf_counter() - started, json.loads(result.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=3000, help="conversations in the store (default: 3000)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "bench.db"
        fill(db, args.count)
        rules = DIALOGS_DIR / "advice.yaml"
        changed = Path(folder) / "changed.yaml"
        changed.write_text(rules.read_text(encoding="utf-8").replace(
            "{id: process_documented, points: 15,", "{id: process_documented, points: 25,"), encoding="utf-8")
        for name, path in (("unchanged rules", rules), ("a changed weight", changed)):
            seconds, report = timed(db, path)
            print(f"{name}: {report['conversations']:,} conversations replayed in {seconds:.2f} s, "
                  f"{report['changed']:,} changed, {report['not_replayable']} not replayable")


if __name__ == "__main__":
    main()
