"""Whole-command tests: the ``moat`` CLI run as a subprocess on real images and hostile inputs."""
