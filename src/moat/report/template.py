"""``--format template --template FILE``: the native report rendered through a Jinja2 template.

The template sees the ``moat.report/v1`` dict (docs/report-schema.md) as its variables
(``vulnerabilities``, ``packages``, ``summary``, ``artifact`` …) and as ``report``. Jinja2 is the
template language Python users already know. Templates come from the user's repository but
the data comes from images, so rendering runs in Jinja2's sandbox with undefined names as errors
(a typo must fail loudly, not print nothing), and HTML escaping on for ``.html``/``.xml`` templates.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from moat.errors import MoatError

MAX_TEMPLATE_BYTES = 1024 * 1024


def render_template(path: str, report: dict[str, Any]) -> str:
    try:
        import jinja2
        from jinja2.sandbox import SandboxedEnvironment
    except ImportError:  # pragma: no cover - jinja2 is a declared dependency
        raise MoatError("--format template needs the jinja2 package (pip install jinja2)") from None

    file = Path(path)
    try:
        if file.stat().st_size > MAX_TEMPLATE_BYTES:
            raise MoatError(f"--template {path}: larger than {MAX_TEMPLATE_BYTES} bytes")
        source = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise MoatError(f"--template {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise MoatError(f"--template {path}: not UTF-8 text") from None
    env = SandboxedEnvironment(
        undefined=jinja2.StrictUndefined,
        autoescape=file.suffix.lower() in (".html", ".htm", ".xml"),
        keep_trailing_newline=True,
    )
    try:
        return env.from_string(source).render(report=report, **report)
    except jinja2.TemplateSyntaxError as exc:
        raise MoatError(f"--template {path}: line {exc.lineno}: {exc.message}") from None
    except jinja2.TemplateError as exc:
        raise MoatError(f"--template {path}: {exc}") from None
    except (TypeError, ValueError, LookupError, ArithmeticError) as exc:  # a template's own bug, e.g. 1 + "a"
        raise MoatError(f"--template {path}: {type(exc).__name__}: {exc}") from None
