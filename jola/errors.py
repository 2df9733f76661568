"""Errors a user can cause: they carry one clear message and end a run with a non-zero code."""


class UserError(Exception):
    """A bad name, value, or data file supplied by the user (not a bug in this library)."""


def error_reason(err: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message (its type when it has none), for one-line
    errors that wrap a library's multi-line one."""
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:limit]


class UnknownChoice(UserError, ValueError):
    """A name that is not among the choices (a registry's names, an option's values).

    Also a ValueError, so that code which knows nothing of UserError (the torch-only gates and
    schedules, their callers) can catch it as the bad value it is.
    """


def unknown_choice(kind: str, value: object, choices, sort: bool = True) -> UnknownChoice:
    """The error for a name that is not among ``choices``, listing them (sorted unless
    ``sort`` is false: then in the given order, e.g. the default first)."""
    listed = sorted(choices) if sort else list(choices)
    return UnknownChoice(f"unknown {kind} '{value}'; choices: {', '.join(listed)}")


class TrainingDiverged(UserError):
    """A non-finite training or dev loss, or non-finite trained parameters: nothing is saved."""


class MergeNotSupported(UserError):
    """This method's edits cannot be folded into the weights exactly."""
