"""Configuration and compliance checks: the rule engine, the built-in rules by target kind,
templates (rule selections with parameters), and compliance mappings.

A target (a Dockerfile, a Kubernetes object, an image config, a Docker host, a node) is parsed into
:class:`~moat.checks.document.Document` objects; rules turn documents into findings
(:class:`~moat.model.Misconfiguration`). See docs/checks.md.
"""
