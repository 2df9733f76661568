"""`make tables`: paper-style tables and plots from the finished runs under outputs/.

    python scripts/make_tables.py [--outputs outputs/] [--tables tables/] [--n 200]
                                  [--datasize-task siqa] [--no-plots]

The work is done by :func:`jola.tables.make_tables`; this script prints a summary and the main
table(s) and any ablation table in Markdown (the paper's published rows below ours), and exits
non-zero when there is no finished run yet.
"""

from __future__ import annotations

import argparse
import sys

from jola.tables import (
    DEFAULT_DATASIZE_TASK,
    DEFAULT_MAIN_N,
    ConflictingRuns,
    NoResults,
    make_tables,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--outputs", default="outputs/", help="run directories (default outputs/)")
    parser.add_argument("--tables", default="tables/", help="where to write (default tables/)")
    parser.add_argument(
        "--n",
        type=int,
        default=DEFAULT_MAIN_N,
        help=f"training examples of the main table (default {DEFAULT_MAIN_N}, the paper's)",
    )
    parser.add_argument(
        "--datasize-task",
        default=DEFAULT_DATASIZE_TASK,
        help=f"task of the method x n table (default {DEFAULT_DATASIZE_TASK})",
    )
    parser.add_argument("--no-plots", action="store_true", help="write the tables only")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        report = make_tables(
            args.outputs,
            args.tables,
            main_n=args.n,
            datasize_task=args.datasize_task,
            plots=not args.no_plots,
        )
    except NoResults as err:
        print(
            "no results yet: run python run.py ... first "
            f"(e.g. python run.py method=jola task=siqa n={args.n}); {err}",
            file=sys.stderr,
        )
        return 1
    except ConflictingRuns as err:
        print(f"make tables: {err}", file=sys.stderr)
        return 1
    print(report.summary())
    print(f"tables and plots under {args.tables}")
    for markdown in report.main_markdown + report.ablation_markdown:
        print()
        print(markdown, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
