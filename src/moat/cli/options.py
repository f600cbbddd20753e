"""Options shared by every command that reads an image, declared once."""

from __future__ import annotations

from typing import Annotated

import typer

CacheDir = Annotated[
    str | None,
    typer.Option("--cache-dir", envvar="MOAT_CACHE_DIR", help="Cache directory (default: XDG cache dir/moat)."),
]
NoCache = Annotated[bool, typer.Option("--no-cache", help="Analyze every layer again; do not read or fill the cache.")]
Platform = Annotated[
    str | None, typer.Option("--platform", help="Platform to pick from a multi-arch image, e.g. linux/arm64.")
]
Insecure = Annotated[bool, typer.Option("--insecure", help="Allow plain-HTTP registries and unverified TLS.")]
Username = Annotated[str | None, typer.Option("--username", envvar="MOAT_USERNAME", help="Registry user name.")]
Password = Annotated[
    str | None, typer.Option("--password", envvar="MOAT_PASSWORD", help="Registry password or token.")
]
DockerHost = Annotated[
    str | None, typer.Option("--docker-host", help="Engine socket for docker: targets (default $DOCKER_HOST).")
]
Output = Annotated[str | None, typer.Option("--output", "-o", help="Write the report to FILE instead of stdout.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress display on stderr.")]
DockerConfig = Annotated[
    str | None,
    typer.Option("--docker-config", help="Docker config.json (or its directory) for registry credentials."),
]
