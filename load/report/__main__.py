"""``python -m load.report BENCH_FOLDER``: write the report of a finished bench folder again."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from load.report.writer import build


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m load.report BENCH_FOLDER")
        return 2
    for line in build(Path(args[0])):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
