"""List every task: suite, metrics, default source, and which sources load here with their sizes.

    python scripts/list_tasks.py            # all tasks (tries packaged, fixture and hub)
    python scripts/list_tasks.py siqa xsum  # some tasks

The hub is tried with HF_HUB_OFFLINE=1 unless the environment says otherwise, so on an offline
machine it shows as not loading; ``llm_adapters`` needs your own data_dir and is not tried.
"""

from __future__ import annotations

import sys

from datasets.utils.logging import disable_progress_bar

from jola.errors import UserError
from jola.offline import default_offline
from tasks.catalog import task_catalog


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    default_offline()  # also switches the libraries imported above (they read it at import)
    disable_progress_bar()
    try:
        infos = task_catalog(argv or None)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print("| task | suite | metrics | source by data profile | loads here | sizes |")
    print("|---|---|---|---|---|---|")
    for info in infos:
        loading = [s for s in info.sources if s.loads]
        sizes = "; ".join(f"{s.name}: {s.detail}" for s in loading) or "-"
        names = ", ".join(s.name for s in loading) or "none"
        print(
            f"| {info.name} | {info.suite} | {', '.join(info.metrics)} | {info.default_source} "
            f"| {names} | {sizes} |"
        )
    failed = [(i.name, s) for i in infos for s in i.sources if s.applies and not s.loads]
    if failed:
        print("\nnot loading here:")
        for name, status in failed:
            print(f"  {name} [{status.name}]: {status.detail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
