"""Custom rules: a user's own checks, written as CEL expressions in a YAML file, no Moat code touched.

CEL (the Common Expression Language) is what Kubernetes ValidatingAdmissionPolicy uses, so we mirror
its naming: ``object`` is the document's data and ``params`` the rule's parameters (its defaults,
overridden by a template). An ``expression`` is true when the object is compliant; an optional
``match`` is a pre-condition (false: the rule does not apply to this object)::

    rules:
      - id: ACME-001
        title: Deployments must set a team label
        severity: MEDIUM
        targets: [kubernetes]
        match: "object.kind == 'Deployment'"
        expression: "has(object.metadata.labels) && 'team' in object.metadata.labels"
        message: "missing team label"
        description: ...
        remediation: ...

The rules become ordinary :class:`~moat.checks.rule.Rule` objects, so the engine, templates and
reports treat them like built-ins.

Why ``common-expression-language`` (Rust ``cel`` crate bindings) rather than ``cel-python``: both
have ``has``, ``all``, ``exists``, ``exists_one``, ``filter``, ``map`` and the core string functions,
but only the former ships the strings extension Kubernetes also enables (``lowerAscii``, ``split``,
``replace``, ``join`` …), its regular expressions are linear-time (no ReDoS from a user's pattern),
and it is several times faster: on 1,000 Deployments a label check took 0.25 s against 1.2 s, and a
nested ``all``/``exists`` over containers and allowed registries 0.33 s against 3.8 s.

Why a worker process: the library has no cost limit and holds the GIL while it evaluates, so neither
a signal nor a thread can stop it; ``[1..n].all(a, … .all(b, … .all(c, …)))`` over a list of 2,000
items would run for hours. Evaluation therefore happens in one long-lived child process (started
on first use, reused for every rule and object) that the parent waits on with a timeout
(:data:`DEFAULT_TIMEOUT` per evaluation, ``MOAT_CEL_TIMEOUT`` to change it). On timeout the child is
killed and the rule fails with an error naming the rule and the object; the next evaluation starts
a fresh child, but the rule that ran long is not evaluated again (one timeout per rule, not one per
object). The child also runs under an address-space limit, so an expression that builds an enormous
list dies there instead of taking the machine's memory. Measured: the child starts in about 0.3 s;
through the engine, 1,000 Deployments take 0.4-0.5 s per rule (hand-over to the child included).

A key whose value is null counts as absent (as the Kubernetes API server stores the object), so
``has(c.securityContext)`` is false for ``securityContext:`` with nothing after it.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from moat.checks.document import Document, TargetKind
from moat.checks.rule import Hit, Rule, RuleContext, validate_rule
from moat.checks.yamlload import load_yaml_file
from moat.errors import MoatError
from moat.model import SEVERITIES

DEFAULT_TIMEOUT = 5.0
"""Seconds one evaluation (match + expression + message) may take. A realistic rule on a realistic
object takes well under a millisecond; seconds mean a runaway comprehension."""
TIMEOUT_ENV = "MOAT_CEL_TIMEOUT"
MAX_EXPRESSION_CHARS = 5 * 1024
"""The length Kubernetes allows a ValidatingAdmissionPolicy expression."""
MAX_RULES = 1_000
WORKER_MEMORY_BYTES = 2 * 1024 * 1024 * 1024
"""Address-space limit of the evaluation process."""
WORKER_START_TIMEOUT = 60.0

_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")
_RESERVED_PREFIX = "MOAT-"
_RULE_KEYS = {
    "id", "title", "severity", "targets", "match", "variables", "expression", "message", "messageExpression",
    "description", "remediation", "verification", "references", "controls", "aliases", "params",
}
_REQUIRED = ("id", "title", "severity", "targets", "expression", "description", "remediation")
_COMPILE_ERROR = re.compile(r"ERROR: <input>:(\d+):(\d+): (.*)")


class CustomRuleError(MoatError):
    """A custom rule file or one of its expressions is wrong (exit code 2)."""


@dataclass(frozen=True, slots=True)
class CelExpressions:
    """The CEL sources of one rule, as the worker evaluates them."""

    expression: str
    match: str = ""
    message_expression: str = ""
    variables: tuple[tuple[str, str], ...] = ()
    """Named sub-expressions (name, source), evaluated in order after ``match``, seen as
    ``variables.NAME`` by later variables, the expression and the message (as in
    ValidatingAdmissionPolicy)."""


def load_custom_rules(path: Path, *, timeout: float | None = None) -> list[Rule]:
    """The rules of a custom rules file, checked and compiled; raise :class:`CustomRuleError` with one
    line naming the file (and rule) on anything wrong.

    ``timeout`` bounds one evaluation in seconds (default: ``MOAT_CEL_TIMEOUT`` or
    :data:`DEFAULT_TIMEOUT`)."""
    from moat.checks.rule import builtin_rules

    label = str(path)
    limit = _timeout(timeout)
    documents = load_yaml_file(path, label)
    if len(documents) != 1 or not isinstance(documents[0].data, dict):
        raise CustomRuleError(f"{label}: expected one YAML mapping with a 'rules' list")
    data = documents[0].data
    extra = sorted(set(data) - {"rules"})
    if extra:
        raise CustomRuleError(f"{label}: unknown key {', '.join(extra)} (the file holds 'rules:')")
    entries = data.get("rules")
    if not isinstance(entries, list) or not entries:
        raise CustomRuleError(f"{label}: 'rules' must be a non-empty list")
    if len(entries) > MAX_RULES:
        raise CustomRuleError(f"{label}: more than {MAX_RULES} rules")
    builtin = builtin_rules()
    rules: list[Rule] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        item = _parse_rule(entry, index, label, limit)
        if item.id in seen:
            raise CustomRuleError(f"{label}: rule {item.id} is defined twice")
        if item.id in builtin:
            raise CustomRuleError(f"{label}: rule {item.id} has the id of a built-in rule; choose another")
        seen.add(item.id)
        rules.append(item)
    return rules


def _parse_rule(entry: Any, index: int, label: str, timeout: float) -> Rule:
    where = f"{label}: rules[{index}]"
    if not isinstance(entry, dict):
        raise CustomRuleError(f"{where}: each rule must be a mapping")
    rid = entry.get("id")
    if isinstance(rid, str) and rid:
        where = f"{label}: rule {rid}"
    unknown = sorted(set(entry) - _RULE_KEYS)
    if unknown:
        raise CustomRuleError(f"{where}: unknown key {', '.join(unknown)} (known: {', '.join(sorted(_RULE_KEYS))})")
    missing = [key for key in _REQUIRED if entry.get(key) in (None, "", [])]
    if missing:
        raise CustomRuleError(f"{where}: missing {', '.join(missing)}")
    rid = _string(entry, "id", where)
    if not _ID.match(rid):
        raise CustomRuleError(f"{where}: id must be a letter then letters, digits, '-', '_' or '.' (64 at most)")
    if rid.upper().startswith(_RESERVED_PREFIX):
        raise CustomRuleError(f"{where}: ids starting with {_RESERVED_PREFIX} are reserved for built-in rules")
    severity = _string(entry, "severity", where).upper()
    if severity not in SEVERITIES:
        raise CustomRuleError(f"{where}: severity must be one of {', '.join(SEVERITIES)}")
    targets = _strings(entry, "targets", where)
    bad_targets = [target for target in targets if target not in TargetKind.ALL]
    if bad_targets:
        raise CustomRuleError(f"{where}: unknown target {', '.join(bad_targets)} "
                              f"(known: {', '.join(TargetKind.ALL)})")
    expressions = CelExpressions(
        expression=_expression(entry, "expression", where),
        match=_expression(entry, "match", where),
        message_expression=_expression(entry, "messageExpression", where),
        variables=_variables(entry.get("variables"), where),
    )
    params = entry.get("params") or {}
    if not isinstance(params, dict):
        raise CustomRuleError(f"{where}: params must be a mapping of name to default value")
    title = _string(entry, "title", where)
    controls = _strings(entry, "controls", where)
    verification = _string(entry, "verification", where) or (
        f"Run `moat config` with this rules file on the object; the rule holds when `{expressions.expression}` "
        "is true for it."
    )
    item = Rule(
        id=rid,
        title=title,
        severity=severity,
        targets=tuple(targets),
        description=_string(entry, "description", where),
        remediation=_string(entry, "remediation", where),
        verification=verification,
        check=CelCheck(rid, label, expressions, _string(entry, "message", where) or title, timeout),
        references=tuple(_strings(entry, "references", where)),
        controls=tuple(controls),
        aliases=tuple(_strings(entry, "aliases", where)),
        params={str(key): value for key, value in params.items()},
        source=label,
    )
    try:
        validate_rule(item)
    except ValueError as exc:
        raise CustomRuleError(f"{label}: {exc}") from None
    return item


def _string(entry: Mapping[str, Any], key: str, where: str) -> str:
    value = entry.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise CustomRuleError(f"{where}: {key} must be text")
    return value.strip()


def _strings(entry: Mapping[str, Any], key: str, where: str) -> list[str]:
    value = entry.get(key)
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise CustomRuleError(f"{where}: {key} must be a list of names")
    return list(value)


def _expression(entry: Mapping[str, Any], key: str, where: str) -> str:
    """The CEL source under ``key``, compiled once here so a syntax error stops the load."""
    source = _string(entry, key, where)
    if not source:
        return ""
    if len(source) > MAX_EXPRESSION_CHARS:
        raise CustomRuleError(f"{where}: {key} is longer than {MAX_EXPRESSION_CHARS} characters")
    import cel

    try:
        cel.compile(source)
    except ValueError as exc:
        raise CustomRuleError(f"{where}: {key} does not compile: {_compile_message(str(exc))}") from None
    return source


def _variables(value: Any, where: str) -> tuple[tuple[str, str], ...]:
    """``variables: [{name: containers, expression: "..."}]``, each name an identifier, each compiled."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise CustomRuleError(f"{where}: variables must be a list of name/expression mappings")
    result: list[tuple[str, str]] = []
    for item in value:
        extra = sorted(set(item) - {"name", "expression"})
        name = item.get("name")
        if extra or not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise CustomRuleError(f"{where}: each variable needs a name (an identifier) and an expression")
        if name in dict(result):
            raise CustomRuleError(f"{where}: variable {name} is defined twice")
        source = _expression(item, "expression", f"{where}: variable {name}")
        if not source:
            raise CustomRuleError(f"{where}: variable {name} has no expression")
        result.append((name, source))
    return tuple(result)


def _compile_message(text: str) -> str:
    """The compiler's message on one line: position and problem, without the echoed source."""
    found = _COMPILE_ERROR.search(text)
    if not found:
        return text.strip().splitlines()[0] if text.strip() else "syntax error"
    line, column, problem = found.groups()
    limit = re.search(r'msg: "([^"]*)"', problem)
    if limit:
        problem = limit.group(1)
    return f"line {line} column {column}: {problem}"


def _timeout(value: float | None) -> float:
    if value is not None:
        seconds = value
    else:
        raw = os.environ.get(TIMEOUT_ENV, "")
        try:
            seconds = float(raw) if raw else DEFAULT_TIMEOUT
        except ValueError:
            raise CustomRuleError(f"{TIMEOUT_ENV}={raw!r} is not a number of seconds") from None
    if not 0 < seconds <= 3600:
        raise CustomRuleError(f"CEL evaluation timeout must be between 0 and 3600 seconds, got {seconds}")
    return seconds


class CelCheck:
    """The check function of a custom rule: evaluate its CEL in the worker, turn a false into a Hit."""

    __slots__ = ("expressions", "message", "rule_id", "source", "timed_out", "timeout")

    def __init__(self, rule_id: str, source: str, expressions: CelExpressions, message: str, timeout: float) -> None:
        self.rule_id = rule_id
        self.source = source
        self.expressions = expressions
        self.message = message
        self.timeout = timeout
        self.timed_out = False
        """Set by the first timeout: the rule is not evaluated again, so a runaway expression costs one
        timeout per run, not one per object (the engine goes on with the other rules)."""

    def __call__(self, doc: Document, ctx: RuleContext) -> Iterator[Hit]:
        where = f"{self.source}: rule {self.rule_id} on {doc.path}" + (f" {doc.name}" if doc.name else "")
        if self.timed_out:
            raise CustomRuleError(f"{where}: not evaluated, the rule ran past its {self.timeout:g} s limit earlier")
        activation = {"object": doc.data, "params": dict(ctx.params)}
        answer = EVALUATOR.evaluate(self.expressions, activation, self.timeout)
        status = answer[0]
        if status in ("skip", "pass"):
            return
        if status == "fail":
            yield Hit(str(answer[1]) or self.message)
            return
        if status == "timeout":
            self.timed_out = True
            raise CustomRuleError(f"{where}: evaluation stopped after {self.timeout:g} s (CEL cost bound; "
                                  "nested comprehensions over large lists?)")
        raise CustomRuleError(f"{where}: {answer[1]}")


# --- the evaluation worker ---------------------------------------------------------------------------


class _Evaluator:
    """One child process that evaluates CEL, restarted when a timeout kills it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._conn: _PipeConnection | None = None
        self._owner = 0
        """The pid that started the worker: a forked child (a Celery worker) must start its own rather
        than talk over its parent's pipe."""

    def evaluate(self, expressions: CelExpressions, activation: dict[str, Any], timeout: float) -> tuple[Any, ...]:
        """``("skip",)``, ``("pass",)``, ``("fail", message)``, ``("error", text)`` or ``("timeout",)``."""
        with self._lock:
            conn = self._connection()
            try:
                conn.send((expressions, activation))
            except (OSError, ValueError) as exc:
                self._stop()
                return ("error", f"could not hand the object to the CEL worker: {exc}")
            if not conn.poll(timeout):
                self._stop()
                return ("timeout",)
            try:
                answer: tuple[Any, ...] = conn.recv()
            except (EOFError, OSError):
                code = self._stop()
                return ("error", f"the CEL worker died (exit code {code}; an expression that builds huge "
                                 f"values hits the {WORKER_MEMORY_BYTES >> 20} MiB memory limit)")
            return answer

    def _connection(self) -> _PipeConnection:
        if self._owner != os.getpid():
            self._process, self._conn = None, None  # the parent's worker; leave it to the parent
        if self._conn is not None and self._process is not None and self._process.poll() is None:
            return self._conn
        self._stop()
        # A plain child interpreter rather than multiprocessing's spawn: spawn re-imports the parent's
        # __main__, which re-runs any script that embeds Moat without a __name__ guard.
        child_reads, parent_writes = os.pipe()
        parent_reads, child_writes = os.pipe()
        command = [sys.executable, "-c", f"from moat.checks.custom import worker_main; "
                   f"worker_main({child_reads}, {child_writes}, {WORKER_MEMORY_BYTES})"]
        # The library prints failures of Python callbacks on stderr; the answers already carry them, so
        # the child's stderr goes to a file, read only to explain a worker that would not start.
        with tempfile.TemporaryFile() as errors:
            try:
                process = subprocess.Popen(command, pass_fds=(child_reads, child_writes), stdin=subprocess.DEVNULL,
                                           stdout=subprocess.DEVNULL, stderr=errors, close_fds=True)
            except OSError as exc:
                for fd in (parent_reads, parent_writes):
                    os.close(fd)
                raise MoatError(f"cannot start the CEL evaluation worker: {exc}") from None
            finally:
                os.close(child_reads)
                os.close(child_writes)
            conn = _PipeConnection(parent_reads, parent_writes)
            self._process, self._conn, self._owner = process, conn, os.getpid()
            if not conn.poll(WORKER_START_TIMEOUT):
                self._stop()
                raise MoatError("the CEL evaluation worker did not start")
            try:
                conn.recv()
            except (EOFError, OSError):
                self._stop()
                errors.seek(0)
                lines = errors.read(65536).decode("utf-8", "replace").strip().splitlines()
                raise MoatError("the CEL evaluation worker failed to start: "
                                f"{lines[-1] if lines else 'no output'}") from None
        return conn

    def _stop(self) -> int | None:
        code = None
        if self._conn is not None:
            self._conn.close()
        if self._process is not None:
            if self._process.poll() is None:
                self._process.kill()
            code = self._process.wait(5)
        self._process, self._conn = None, None
        return code

    def close(self) -> None:
        with self._lock:
            if self._owner == os.getpid():
                self._stop()


EVALUATOR = _Evaluator()
atexit.register(EVALUATOR.close)


class _PipeConnection:
    """A read end and a write end of two pipes, spoken to with multiprocessing's message framing."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self._reader = Connection(read_fd, writable=False)
        self._writer = Connection(write_fd, readable=False)

    def send(self, value: Any) -> None:
        self._writer.send(value)

    def recv(self) -> Any:
        return self._reader.recv()

    def poll(self, timeout: float) -> bool:
        return self._reader.poll(timeout)

    def close(self) -> None:
        self._reader.close()
        self._writer.close()


def worker_main(read_fd: int, write_fd: int, memory_bytes: int) -> None:
    """The child: compile each distinct source once, answer requests until the parent hangs up."""
    import resource

    conn = _PipeConnection(read_fd, write_fd)

    with contextlib.suppress(ValueError, OSError):  # a lower hard limit may already be in force
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    import cel
    from cel.stdlib import add_stdlib_to_context

    programs: dict[str, Any] = {}
    context = cel.Context()
    add_stdlib_to_context(context)
    conn.send(("ready",))
    while True:
        try:
            expressions, activation = conn.recv()
        except (EOFError, OSError):
            return
        conn.send(_evaluate(cel, programs, context, expressions, activation))


def _evaluate(cel: Any, programs: dict[str, Any], context: Any, expressions: CelExpressions,
              activation: dict[str, Any]) -> tuple[Any, ...]:
    try:
        # Every name is set on every call: the context is reused, and nothing of the previous rule or
        # object may leak into this one (match sees no variables, as in ValidatingAdmissionPolicy).
        context.update({"variables": {}, **{name: _without_nulls(value) for name, value in activation.items()}})
        if expressions.match:
            matched = _run(cel, programs, context, expressions.match)
            if not isinstance(matched, bool):
                return ("error", f"match returned {_type_name(matched)}, not a bool")
            if not matched:
                return ("skip",)
        if expressions.variables:
            values: dict[str, Any] = {}
            for name, source in expressions.variables:
                context.update({"variables": values})
                try:
                    values[name] = _run(cel, programs, context, source)
                except KeyError as exc:
                    return ("error", f"variable {name} failed: no such key {exc} (guard it with has())")
                except Exception as exc:
                    return ("error", f"variable {name} failed: {_one_line(str(exc))}")
            context.update({"variables": values})
        compliant = _run(cel, programs, context, expressions.expression)
        if not isinstance(compliant, bool):
            return ("error", f"expression returned {_type_name(compliant)}, not a bool (true means compliant)")
        if compliant:
            return ("pass",)
        message = ""
        if expressions.message_expression:
            text = _run(cel, programs, context, expressions.message_expression)
            if not isinstance(text, str):
                return ("error", f"messageExpression returned {_type_name(text)}, not a string")
            message = text
        return ("fail", message)
    except KeyError as exc:
        return ("error", f"evaluation failed: no such key {exc} (guard it with has())")
    except Exception as exc:
        return ("error", f"evaluation failed: {_one_line(str(exc))}")


def _without_nulls(value: Any) -> Any:
    """The data with null-valued keys dropped: ``securityContext:`` with nothing after it is absent, as
    the Kubernetes API server stores it, so ``has(c.securityContext)`` is false rather than a later
    "no such overload" on null."""
    if isinstance(value, dict):
        return {key: _without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return value


def _run(cel: Any, programs: dict[str, Any], context: Any, source: str) -> Any:
    program = programs.get(source)
    if program is None:
        program = programs[source] = cel.compile(source)
    return program.execute(context)


def _type_name(value: Any) -> str:
    return {bool: "bool", int: "int", float: "double", str: "string", list: "list", dict: "map",
            bytes: "bytes", type(None): "null"}.get(type(value), type(value).__name__)


def _one_line(text: str) -> str:
    return " ".join(text.split())[:500] or "unknown error"
