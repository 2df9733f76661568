"""`make tables`: paper-style tables from outputs/ (not implemented yet; fails loudly)."""

import sys

if __name__ == "__main__":
    print(
        "make tables: no results yet — table generation arrives with the sweeps issue; "
        "finished runs are in outputs/<model>/<method>/<task>/n<n>/seed<seed>/results.json",
        file=sys.stderr,
    )
    sys.exit(1)
