"""The one exception type the CLI turns into a one-line `error: …` message."""


class TubeletError(Exception):
    """A user-facing failure: bad input, a malformed file, an impossible setting."""


class CheckpointError(TubeletError):
    """A checkpoint that cannot be read: wrong format, shapes or keys."""


class VideoError(TubeletError):
    """A video that cannot be opened or decoded."""
