"""The recorded files under tests/data are self-contained: a test that reads them works on any
machine, wherever the repository is checked out."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data"

# Places that exist only on the machine a file was recorded on. A recorded run says @ROOT@ for the
# directory it was recorded in; the tests put their tmp directory there (tests/app/test_snapshots.py).
MACHINE_PATH = re.compile(r"(?<![\w.@~-])/(?:tmp|home|root|Users)/\S*")


def test_no_recorded_file_names_a_path_outside_the_repository():
    found = []
    for path in sorted(p for p in DATA.rglob("*") if p.is_file()):
        text = path.read_text(encoding="utf-8", errors="replace")
        for line_number, line in enumerate(text.splitlines(), start=1):
            for match in [*MACHINE_PATH.finditer(line), *re.finditer(re.escape(str(REPO)) + r"\S*", line)]:
                found.append(f"{path.relative_to(REPO)}:{line_number}: {match.group(0)}")
    assert not found, "recorded files name paths of the machine they were made on:\n" + "\n".join(found[:20])
