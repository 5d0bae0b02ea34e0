"""The few exceptions Knowledge Desk raises on purpose; each message is meant for users."""


class KdeskError(Exception):
    """Base class: anything the UI or CLI may show to a user as it is."""


class SettingsError(KdeskError):
    """A setting has a value we cannot work with."""


class ModelUnavailableError(KdeskError):
    """The chat model server is down, unreachable, too slow or misconfigured."""


class NotFoundError(KdeskError):
    """A document or collection that does not exist (or is not visible to the caller)."""


class PermissionDeniedError(KdeskError):
    """The signed-in user's roles do not allow this. The message names the action only, never
    what exists beyond the user's permissions."""
