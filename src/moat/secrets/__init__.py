"""Secret detection: credentials in files, image layers, environment variables, manifests and Dockerfiles.

* :mod:`moat.secrets.rules` — what a credential looks like (one rule per token format).
* :mod:`moat.secrets.detect` — finding them in text, with line numbers and allow-lists.
* :mod:`moat.secrets.redact` — masking them in everything Moat prints.
* :mod:`moat.secrets.layers` — walking every layer of an image for secrets and setuid/setgid files.
"""
