"""Errors a person can cause, each carrying a message meant to be shown as is."""


class MlopsError(Exception):
    """Base class: the message is written for the person using the panel or the CLI."""


class ConfigError(MlopsError):
    """A setting is missing or invalid; the message names the setting."""


class RegistryUnavailable(MlopsError):
    """The MLflow tracking server or store cannot be reached."""


class NotFound(MlopsError):
    """A model, version, run or request does not exist."""


class InvalidInput(MlopsError):
    """Input data or a parameter is malformed; the message names what is wrong."""


class PermissionDenied(MlopsError):
    """The acting user lacks the role for this action."""


class ActionRefused(MlopsError):
    """A workflow rule (four eyes, a failing gate, a stale request) refuses the action."""


class QueryTimeout(MlopsError):
    """Reading data took longer than the configured limit and was stopped."""


class PolicyDataMissing(NotFound):
    """The policy names data for a model that is not there: the policy needs fixing."""
