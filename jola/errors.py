"""Errors a user can cause: they carry one clear message and end a run with a non-zero code."""


class UserError(Exception):
    """A bad name, value, or data file supplied by the user (not a bug in this library)."""


def unknown_choice(kind: str, value: object, choices) -> UserError:
    """The error for a name that is not in a registry, listing what is available."""
    return UserError(f"unknown {kind} '{value}'; choices: {', '.join(sorted(choices))}")


class TrainingDiverged(UserError):
    """A non-finite training or dev loss, or non-finite trained parameters: nothing is saved."""
