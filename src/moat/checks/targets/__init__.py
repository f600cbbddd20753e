"""Parsers that turn a target (a Dockerfile, manifests, a compose file, an image config, a Docker
host, a Kubernetes node) into :class:`~moat.checks.document.Document` objects."""
