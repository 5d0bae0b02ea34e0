"""The few exceptions Knowledge Desk raises on purpose; each message is meant for users."""


class KdeskError(Exception):
    """Base class: anything the UI or CLI may show to a user as it is."""


class SettingsError(KdeskError):
    """A setting has a value we cannot work with."""


class ModelUnavailableError(KdeskError):
    """The chat model server is down, unreachable, too slow or misconfigured."""


def model_timeout(where: str, timeout_s: float) -> ModelUnavailableError:
    """``where`` (a model server or the embedded model) did not answer within ``timeout_s``."""
    return ModelUnavailableError(
        f"{where} did not answer within {timeout_s:g} s. The model may still be loading or the "
        "machine is busy: try again, or raise KDESK_MODEL_TIMEOUT_S."
    )


class NotFoundError(KdeskError):
    """A document or collection that does not exist (or is not visible to the caller)."""


class PermissionDeniedError(KdeskError):
    """The signed-in user's roles do not allow this. The message names the action only, never
    what exists beyond the user's permissions."""
