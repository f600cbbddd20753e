"""The standalone HTML compliance report, parsed with the stdlib HTML parser: its structure follows the
report, it carries nothing from outside the file, and hostile text from manifests stays text."""

from __future__ import annotations

import dataclasses
import re
from html.parser import HTMLParser
from pathlib import Path

from checks.test_compliance import (
    CIS_TEMPLATE,
    manifest_documents,
    node_document,
    report_of,
    run_rules,
)
from moat import __version__
from moat.checks.compliance import FAIL, MANUAL, NOT_ASSESSED, PASS, ComplianceReport
from moat.checks.templates import parse_template
from moat.report.compliance_html import MAX_FINDINGS_PER_RULE, render_compliance_html

HOSTILE = '"><script>alert(1)</script><img src=x onerror=alert(2)>'


@dataclasses.dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    text: str = ""
    children: list[Element] = dataclasses.field(default_factory=list)

    def all(self) -> list[Element]:
        found = [self]
        for child in self.children:
            found.extend(child.all())
        return found

    def find(self, tag: str | None = None, cls: str | None = None, id: str | None = None) -> list[Element]:
        return [e for e in self.all() if (tag is None or e.tag == tag)
                and (cls is None or cls in e.attrs.get("class", "").split())
                and (id is None or e.attrs.get("id") == id)]

    @property
    def full_text(self) -> str:
        return " ".join(" ".join(part.text for part in self.all()).split())


VOID = {"meta", "br", "img", "link", "input", "hr", "col"}


class TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#root", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {name: value or "" for name, value in attrs})
        self.stack[-1].children.append(element)
        if tag not in VOID:
            self.stack.append(element)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack[-1].tag == tag, f"</{tag}> closes <{self.stack[-1].tag}>"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(Element("#text", {}, data))


def parse(page: str) -> Element:
    builder = TreeBuilder()
    builder.feed(page)
    builder.close()
    assert builder.stack == [builder.root], "unclosed elements"
    return builder.root


def sample_report() -> ComplianceReport:
    run = run_rules([*manifest_documents("KSV-0017-bad-1", "KSV-0010-good-1"), node_document("true")])
    return report_of(run)


def test_header_summary_and_control_table_follow_the_report() -> None:
    report = sample_report()
    root = parse(render_compliance_html(report))
    header = root.find(id="report-header")[0]
    assert "CIS Kubernetes (test)" in header.full_text
    assert "cis-kubernetes-1.9" in header.full_text and "test-cis-k8s" in header.full_text
    assert "k8s/" in header.full_text and __version__ in header.full_text
    assert report.created in header.full_text
    cards = {card.attrs["class"].split()[1]: card.full_text for card in root.find(cls="card")}
    assert cards == {FAIL: "3 Failed", NOT_ASSESSED: "0 Not assessed", MANUAL: "2 Manual", PASS: "1 Passed"}
    severities = [badge.full_text for badge in root.find(id="summary")[0].find(cls="sev")]
    assert severities == ["CRITICAL 1", "HIGH 2", "MEDIUM 0", "LOW 0", "UNKNOWN 0"]
    rows = root.find(id="controls")[0].find("tbody")[0].find("tr")
    table = [[cell.full_text for cell in row.find("td")] for row in rows]
    assert [row[0] for row in table] == [c.id for c in report.controls]
    assert [row[2] for row in table] == ["Failed", "Manual", "Failed", "Passed", "Failed", "Manual"]
    assert table[2][1] == "Minimize the admission of privileged containers"
    assert table[2][3] == "T-PRIV" and table[2][4] == "1"
    assert table[5][3] == "—"  # a control only the template names


def test_failed_controls_list_findings_with_location_and_remediation() -> None:
    root = parse(render_compliance_html(sample_report()))
    failed = root.find(id="failed")[0].find("article")
    assert [a.find("span", cls="cid")[0].full_text for a in failed] == ["4.2.1", "5.2.2", "5.2.10"]
    privileged = failed[1]
    [row] = privileged.find("table", cls="findings")[0].find("tbody")[0].find("tr")
    cells = [cell.full_text for cell in row.find("td")]
    assert cells[0].endswith("KSV-0017-bad-1/manifest.yaml:14")
    assert cells[1:] == ["Pod/hello-privileged", "hello", 'container "hello" runs privileged']
    assert privileged.find("pre")[0].full_text == "fix T-PRIV: set it to false"
    node = failed[0]
    assert node.find("td", cls="where")[0].full_text == "node-1:/var/lib/kubelet/config.yaml:7"
    assert "Also mapped here: T-POD-HALF Pod half of a control — passed." in failed[2].full_text


def test_manual_and_not_assessed_controls_say_what_to_do() -> None:
    root = parse(render_compliance_html(sample_report()))
    manual = {a.find("span", cls="cid")[0].full_text: a for a in root.find(id="manual")[0].find("article")}
    assert manual["5.1.5"].find("pre")[0].full_text == "kubectl get pods -o yaml; look for T-SA-MANUAL"
    assert "No Moat rule covers this control" in manual["5.7.4"].full_text
    assert not root.find(id="not-assessed")
    # a run with no node: the node controls are listed with what would assess them
    lone = parse(render_compliance_html(report_of(run_rules(manifest_documents("KSV-0017-good-1")))))
    rows = lone.find(id="not-assessed")[0].find("tbody")[0].find("tr")
    assert [[c.full_text for c in row.find("td")] for row in rows] == [
        ["4.2.1", "Kubelet anonymous auth", "T-KUBELET Kubelet anonymous auth", "Kubernetes nodes (moat k8s-node)"],
    ]


def test_every_link_points_inside_the_page() -> None:
    root = parse(render_compliance_html(sample_report()))
    ids = {e.attrs["id"] for e in root.all() if "id" in e.attrs}
    links = [e.attrs["href"] for e in root.find("a")]
    assert links and all(link.startswith("#") and link[1:] in ids for link in links)


def test_standalone_nothing_loaded_from_outside() -> None:
    page = render_compliance_html(sample_report())
    root = parse(page)
    assert not root.find("script") and not root.find("link") and not root.find("img") and not root.find("iframe")
    assert len(root.find("style")) == 1
    for element in root.all():
        for name, value in element.attrs.items():
            assert not name.startswith("on")
            assert not (name in ("src", "href", "action") and re.match(r"\s*[a-z]+:", value, re.I)), value
    css = root.find("style")[0].full_text
    assert "@import" not in css and "url(" not in css


def test_hostile_text_is_escaped_everywhere() -> None:
    template = parse_template(CIS_TEMPLATE.replace("The default namespace should not be used", "'" + HOSTILE + "'"),
                              "t.yaml")
    run = run_rules(manifest_documents("KSV-0017-bad-1"), template)
    run.findings[0] = dataclasses.replace(run.findings[0], message=HOSTILE, object=HOSTILE, container=HOSTILE,
                                          file=HOSTILE, remediation=HOSTILE)
    report = report_of(run, template)
    report.targets = [HOSTILE]
    page = render_compliance_html(report)
    root = parse(page)
    assert not root.find("script") and not root.find("img")
    assert all(not name.startswith("on") for e in root.all() for name in e.attrs)
    assert HOSTILE in root.find(id="report-header")[0].full_text
    texts = [e.text for e in root.all() if e.tag == "#text"]
    assert sum(HOSTILE in text for text in texts) >= 5  # target, title, file, object, container, message
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_a_huge_rule_is_capped_with_a_pointer_to_the_json(tmp_path: Path) -> None:
    base = manifest_documents("KSV-0017-bad-1")[0]
    docs = [dataclasses.replace(base, name=f"Pod/p{i}") for i in range(MAX_FINDINGS_PER_RULE + 25)]
    report = report_of(run_rules(docs))
    root = parse(render_compliance_html(report))
    privileged = next(a for a in root.find(id="failed")[0].find("article")
                  if a.find("span", cls="cid")[0].full_text == "5.2.2")
    assert len(privileged.find("table", cls="findings")[0].find("tbody")[0].find("tr")) == MAX_FINDINGS_PER_RULE
    assert "25 more findings not listed here" in privileged.full_text


def test_renders_from_the_json_form_too() -> None:
    report = sample_report()
    assert render_compliance_html(report.to_dict()) == render_compliance_html(report)



def test_a_control_with_many_rules_lists_a_few_ids() -> None:
    report = sample_report()
    control = next(c for c in report.controls if c.id == "5.2.2")
    control.rules = control.rules * 12  # the same rule twelve times stands in for a derived control's evidence
    rows = parse(render_compliance_html(report)).find(id="controls")[0].find("tbody")[0].find("tr")
    cells = next(row for row in rows if row.find("td")[0].full_text == "5.2.2").find("td")
    assert [span.full_text for span in cells[3].find("span")] == ["T-PRIV"] * 8
    assert cells[3].full_text.endswith("T-PRIV and 4 more")
