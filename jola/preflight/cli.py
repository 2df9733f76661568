"""Check a sweep before launching it; with --download, prefetch what it needs.

    python scripts/preflight.py experiment=paper_main model=llama31_8b
    python scripts/preflight.py experiment=paper_main model=llama31_8b --download
    python scripts/preflight.py experiment=data_size model=llama31_8b --assume-gpu-memory 80GiB

Takes the same overrides as ``python run.py -m`` (``-m`` itself is accepted and ignored) and
launches nothing. Prints one table (see jola/preflight). Exit code: 0 everything is in place,
1 a problem was found (each one line under the table), 2 bad usage or an override that does not
compose. ``--assume-gpu-memory 80GiB`` (or ``80GiB,80GiB`` for several) checks against GPUs of
that size instead of the visible ones, e.g. on a login node without GPUs.
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Check (and with --download prefetch) everything a sweep needs.",
        epilog="Overrides are those of `python run.py -m`, e.g. experiment=paper_main model=llama31_8b",
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of the sweep")
    parser.add_argument(
        "--download",
        action="store_true",
        help="fetch every missing model, encoder and dataset into the HF caches, then check "
        "again offline and print the offline command",
    )
    parser.add_argument(
        "--assume-gpu-memory",
        metavar="SIZE[,SIZE...]",
        help="check against GPUs of this memory (e.g. 24GiB, or 80GiB,80GiB) instead of the visible ones",
    )
    argv = [a for a in argv if a not in ("-m", "--multirun")]
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    from jola.preflight import Gpu, UsageError, parse_size, preflight

    gpus = None
    if args.assume_gpu_memory:
        try:
            sizes = [parse_size(s) for s in args.assume_gpu_memory.split(",")]
        except ValueError as err:
            print(f"error: --assume-gpu-memory: {err}", file=sys.stderr)
            return 2
        gpus = [Gpu(f"assumed:{i}", size) for i, size in enumerate(sizes)]
    try:
        result = preflight(
            args.overrides,
            gpus=gpus,
            download=args.download,
            say=lambda line: print(line, file=sys.stderr, flush=True),
        )
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(result.render())
    problems = len(result.problems)
    print(f"\npreflight: {'OK' if result.ok else f'{problems} problem(s)'}")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
