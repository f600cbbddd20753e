"""Error types that map onto Moat's exit codes (see DESIGN.md: 2 = bad input, 3 = internal)."""


class MoatError(Exception):
    """Bad input or a bad command: shown to the user as one line, exit code 2."""

    exit_code = 2


class SourceError(MoatError):
    """An image source could not be read (missing file, corrupt archive, registry refused)."""


class LayerError(SourceError):
    """A layer blob is corrupt, truncated, oversized or does not match its digest."""


class ParseError(MoatError):
    """A package database or manifest could not be parsed."""
