"""``docs/reliability.md``'s table counts the cases the ``test_reliability_*`` modules try; keep the two in step.

``python tests/test_reliability_doc.py`` prints the counts.
"""

from __future__ import annotations

import re
from pathlib import Path

import test_reliability_atomic as atomic
import test_reliability_badinput as badinput
import test_reliability_clients as clients
import test_reliability_dataloss as dataloss
import test_reliability_hostile_output as output
import test_reliability_messages as messages
import test_reliability_package as packages
import test_reliability_properties as properties
import test_reliability_reads as reads
import test_reliability_runs as runs
import test_reliability_serve as serve

DOC = Path(__file__).resolve().parents[1] / "docs" / "reliability.md"


def measured() -> dict[str, int]:
    """Row label of the table -> the number of cases the tests try."""
    return {
        "Bad data files": len(badinput.DATA_CASES) * len(badinput.DATA_COMMANDS),
        "UTF-8 BOM": 3,
        "Bad manifests": len(badinput.MANIFEST_CASES) * 9,
        "Bad options and paths": (len(badinput.PACKAGE_CASES) + len(badinput.INSTALL_CASES)
                                  + len(badinput.SERVE_CASES) + len(badinput.OTHER_CASES)),
        "Every command in a subprocess": len(badinput.SUBPROCESS_COMMANDS) + 1,
        "SIGKILL during a checkpoint save": 1,
        "Half-written checkpoints": 2 * 3,
        "Ctrl-C during a checkpoint save": 1,
        "Crash in the middle of a write": len(atomic.WRITERS) + 6,
        "Direct writes in src": len(atomic.DIRECT_WRITES),
        "Hostile generated SQL": len(output.HOSTILE_SQL),
        "Runaway SQL": len(output.RUNAWAY_SQL) + 1,
        "Huge or deeply nested JSON": len(output.HUGE_JSON_CASES) * 5 + len(output.LINT_CASES),
        "Hostile requests": len(serve.HOSTILE_REQUESTS),
        "Lookalike control tokens": len(serve.LOOKALIKES),
        "Concurrent requests": serve.CONCURRENT * serve.ROUNDS,
        "Hostile packages": len(packages.HOSTILE_PACKAGES) + 5,
        "Render then parse": properties.ROUND_TRIP_EXAMPLES,
        "Arbitrary bytes to lint": properties.LINT_EXAMPLES,
        "Data loss": len(dataloss.CASES) + 2,
        "Unbounded reads and hangs": len(reads.CASES) + 1,
        "Hostile clients": len(clients.CASES) + 4,
        "Silent bad runs": (len(runs.NUMERIC_CASES) + 1 + len(runs.RESUME_CASES) + len(runs.DUPLICATE_KEYS)
                            + len(runs.DRIFT) + len(runs.TRUNCATED) + len(runs.CHANGED_BYTES) + len(runs.BAD_CASES)),
        "Messages and exit codes": len(messages.CASES) + 1 + 2,
    }


def test_the_table_counts_what_the_tests_try() -> None:
    rows = {}
    for line in DOC.read_text().splitlines():
        m = re.match(r"\|\s*\*\*(.+?)\*\*.*?\|\s*(\d+)\s*\|", line)
        if m:
            rows[m.group(1)] = int(m.group(2))
    assert rows == measured()


if __name__ == "__main__":
    for label, count in measured().items():
        print(f"{count:5d}  {label}")
