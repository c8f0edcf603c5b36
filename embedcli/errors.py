"""Every failure a user can see: one exception family, each with an exit code.

The CLI prints ``str(error)`` as one line and exits with ``error.exit_code``;
library users catch :class:`EmbedcliError`.
"""


class EmbedcliError(Exception):
    """Base of every error embedcli reports to a user."""

    exit_code = 1


class UsageError(EmbedcliError):
    """A bad option, config value or input file: the user must change the command."""

    exit_code = 2


class CorpusError(UsageError):
    """The corpus cannot be read or holds nothing to train on."""


class ConfigError(UsageError):
    """A training setting or config file is invalid."""


class UnknownWordError(UsageError):
    """A query word is not in the vocabulary."""


class ModelError(EmbedcliError):
    """A model directory is missing, foreign, truncated or corrupted."""

    exit_code = 2
