"""Entry point: ``python run.py method=jola task=siqa n=200`` (Hydra; see conf/config.yaml).

A single run that fails exits non-zero: 2 with one line for errors a user can cause (a bad
value, a refused or diverged run), 130 when interrupted. In a sweep (``-m``) a failed member
leaves failed.json in its directory and the sweep goes on; at the end a summary table lists
finished / skipped / failed / refused members (jola/sweep_report.py) and the exit code is 1 when
any member failed or was refused. Launching the same sweep again skips finished runs and
retries failed and missing ones.
"""

import os
import sys
import time

# The offline variables follow from the config (jola.profiles.apply_network_mode): set when
# every resource of a run is local, left alone when a run names a hub resource.
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import hydra  # noqa: E402
from hydra.core.hydra_config import HydraConfig  # noqa: E402
from hydra.types import RunMode  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from jola.errors import UserError  # noqa: E402
from jola.hydra_glue import register_configs, register_resolvers  # noqa: E402

register_configs()
register_resolvers()


def failure_line(outcome: dict, started: float) -> str:
    """' (see <dir>/failed.json)' when this attempt wrote one, else ''."""
    run_dir = outcome.get("run_dir")
    failed = os.path.join(run_dir, "failed.json") if run_dir else None
    if failed and os.path.exists(failed) and os.path.getmtime(failed) >= started - 1:
        outcome["failed_json"] = failed
        return f" (see {failed})"
    return ""


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> dict:
    from jola.launching import run_in_job
    from jola.sweep_report import record_outcome

    hydra_cfg = HydraConfig.get()
    sweeping = hydra_cfg.mode == RunMode.MULTIRUN
    job_id = f"{hydra_cfg.job.get('num', 0):06d}"
    outcome: dict = {"status": "started", "overrides": list(hydra_cfg.overrides.task)}
    started = time.time()
    if sweeping:
        record_outcome(str(cfg.output_root), job_id, outcome)
    try:
        run_in_job(cfg, hydra_cfg, outcome)
    except KeyboardInterrupt:
        outcome.update(status="interrupted", message="interrupted (Ctrl-C)")
        print(f"interrupted{failure_line(outcome, started)}", file=sys.stderr)
        if sweeping:
            record_outcome(str(cfg.output_root), job_id, outcome)
        sys.exit(130)
    except UserError as err:
        where = failure_line(outcome, started)
        outcome.update(status="failed" if where else "refused", message=str(err))
        print(f"error: {err}{where}", file=sys.stderr)
        if not sweeping:
            sys.exit(2)
    except Exception as err:
        if not sweeping:
            raise
        where = failure_line(outcome, started)
        outcome.update(status="failed", message=f"{type(err).__name__}: {err}")
        print(f"error: run failed ({type(err).__name__}: {err}){where}", file=sys.stderr)
    if sweeping:
        record_outcome(str(cfg.output_root), job_id, outcome)
    return outcome


if __name__ == "__main__":
    main()
    from jola.sweep_report import exit_code

    sys.exit(exit_code())
