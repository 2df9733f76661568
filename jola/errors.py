"""Errors a user can cause: they carry one clear message and end a run with a non-zero code."""


class UserError(Exception):
    """A bad name, value, or data file supplied by the user (not a bug in this library)."""


def error_reason(err: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message (its type when it has none), for one-line
    errors that wrap a library's multi-line one."""
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:limit]


def unknown_choice(kind: str, value: object, choices) -> UserError:
    """The error for a name that is not in a registry, listing what is available."""
    return UserError(f"unknown {kind} '{value}'; choices: {', '.join(sorted(choices))}")


class TrainingDiverged(UserError):
    """A non-finite training or dev loss, or non-finite trained parameters: nothing is saved."""
