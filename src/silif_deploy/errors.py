"""The one error type users see: a message that says what is wrong and what to do."""


class SilifDeployError(Exception):
    """Bad input or an impossible request. The CLI prints the message on one line and exits 2."""
