"""Entry point: ``python run.py method=jola task=siqa n=200`` (Hydra; see conf/config.yaml).

A single run that fails exits non-zero (one line for errors a user can cause). In a sweep
(``-m``) a failed run leaves failed.json in its directory and the sweep goes on; launching the
same sweep again skips finished runs and retries failed and missing ones.
"""

import os
import sys

# The offline variables follow from the config (jola.profiles.apply_network_mode): set when
# every resource of a run is local, left alone when a run names a hub resource.
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import hydra  # noqa: E402
from hydra.core.hydra_config import HydraConfig  # noqa: E402
from hydra.types import RunMode  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from jola.config import register_configs, register_resolvers  # noqa: E402
from jola.errors import UserError  # noqa: E402

register_configs()
register_resolvers()


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> None:
    from jola.launching import run_in_job

    sweeping = HydraConfig.get().mode == RunMode.MULTIRUN
    try:
        run_in_job(cfg, HydraConfig.get())
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        if not sweeping:
            sys.exit(2)
    except Exception as err:
        if not sweeping:
            raise
        print(f"error: run failed ({type(err).__name__}: {err}); see failed.json", file=sys.stderr)


if __name__ == "__main__":
    main()
