"""Names the CIS Docker rule modules share (host, containers): the benchmark's page, the NIST SP
800-190 countermeasures they evidence, and docker-bench-security's id for an item."""

from __future__ import annotations

CIS = "https://www.cisecurity.org/benchmark/docker"

RUNTIME_CONFIG = "nist-800-190:4.4.3"
"""Insecure container runtime configurations."""
NETWORK = "nist-800-190:4.4.2"
"""Unbounded network access from containers."""


def docker_bench_alias(cis_id: str) -> str:
    """docker-bench-security's name for the item (its ``check_x_y`` function)."""
    return "check_" + cis_id.replace(".", "_")
