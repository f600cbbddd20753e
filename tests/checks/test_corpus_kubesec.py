"""kubesec's scoring cases (../shared/corpus/misconfig/kubernetes/kubesec): the sign of
:func:`kubesec_score` must match kubesec's (negative when a critical item is present, zero when the
object has no critical and no hardening item, positive otherwise), and a negative score must come with
findings from the Moat rules that carry the same kubesec ids, so a user sees why."""

from __future__ import annotations

import pytest

from checks.k8s_corpus import KNOWN_FILE, load_documents, run_all_rules
from corpus import Case, cases, known_differences
from moat.checks.rules.k8s_workload import kubesec_score

CASES = cases("misconfig", "kubernetes/kubesec")
KNOWN = known_differences(KNOWN_FILE)
CRITICAL_IDS = ("Privileged", "CapSysAdmin", "HostPID", "HostIPC", "HostNetwork", "DockerSock",
                "AllowPrivilegeEscalation", "SeccompUnconfined", "ApparmorUnconfined")


def _sign(score: int) -> str:
    return "negative" if score < 0 else "zero" if score == 0 else "positive"


def problems_of(case: Case) -> list[str]:
    documents = load_documents(case.input_path)
    if len(documents) != 1:
        return [f"expected one object, got {[doc.name for doc in documents]}"]
    score = kubesec_score(documents[0].data)
    want = case.expected["kubesec_score_sign"]
    problems = [] if _sign(score) == want else [f"score {score} is {_sign(score)}, kubesec's is {want}"]
    if want == "negative":
        run = run_all_rules(documents)
        if not any(set(CRITICAL_IDS) & set(f.aliases) for f in run.findings):
            problems.append("no finding from a rule aliased to a kubesec critical item")
    return problems


def test_corpus_is_present() -> None:
    assert len(CASES) == 52


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_kubesec_case(case: Case) -> None:
    problems = problems_of(case)
    if case.name in KNOWN:
        assert problems, f"{case.name} is listed as a known difference but now passes: remove it"
    else:
        assert not problems, f"{case.name}:\n  " + "\n  ".join(problems)


def test_score_adds_and_subtracts() -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "spec": {"containers": [{"name": "a", "image": "x"}]}}
    assert kubesec_score(pod) == 0
    pod["spec"]["serviceAccountName"] = "web"
    assert kubesec_score(pod) == 3
    pod["spec"]["hostNetwork"] = True
    assert kubesec_score(pod) == 3 - 9
    assert kubesec_score({"apiVersion": "v1", "kind": "Service", "spec": {"hostNetwork": True}}) == 0
    assert kubesec_score("not an object") == 0
