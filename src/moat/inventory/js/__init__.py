"""Helpers shared by the JavaScript analyzers (npm, yarn, pnpm).

The analyzers themselves live in ``moat.inventory.analyzers``; this package holds what more than
one of them needs: package construction, license normalisation, bounded JSON/YAML loading and the
yarn v1 lockfile parser.
"""
