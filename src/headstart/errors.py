"""One exception family for everything a user can get wrong.

Each message says what is wrong, where (file, row, field) and what to do.
The CLI prints ``str(error)`` on one line and exits with code 2.
"""


class HeadstartError(Exception):
    """Base class: a problem the user can fix. Never a bug in headstart.

    Args:
        message: what is wrong.
        where: the file, row, field or option at fault, printed before the message.
        fix: what to do about it, printed after the message.
    """

    def __init__(self, message: str, *, where: str | None = None, fix: str | None = None):
        self.message = message
        self.where = where
        self.fix = fix
        super().__init__(self.__str__())

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        if self.fix:
            text += f" ({self.fix})"
        return text


class DataError(HeadstartError):
    """Input data is missing, unreadable or inconsistent."""


class BackboneError(HeadstartError):
    """A backbone name is unknown or its weights cannot be loaded."""


class ModelError(HeadstartError):
    """A saved model folder is missing, incomplete or does not match the data."""


class LabelingError(HeadstartError):
    """A labeling project, its store or a label is missing, unknown or inconsistent."""


class LabelConflictError(LabelingError):
    """A second label for an item that takes one, written without asking to replace the first."""


class NotAllowedError(LabelingError):
    """A signed-in user's role does not allow this change (another person's label, say)."""


def first_line(error: BaseException) -> str:
    """The first line of a library's error, at most 200 characters; its type where it has no message.

    What a one-line ModelError quotes of the cause.
    """
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
