"""Built-in rules, one module per target kind (or per benchmark section); each registers its rules
with :func:`moat.checks.rule.rule` when imported. :func:`moat.checks.rule.builtin_rules` imports them
all."""
