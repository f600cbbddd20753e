"""``moat templates list|show|export`` as a user runs them (a local app until the lead registers it)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from moat.checks.rule import builtin_rules
from moat.checks.templates import builtin_template_names, builtin_template_text, load_template
from moat.cli.templates import register

app = typer.Typer()
register(app)

try:  # click < 8.2 mixes stderr into stdout unless told not to; 8.2 keeps them apart and drops the flag
    runner = CliRunner(mix_stderr=False)  # type: ignore[call-arg]
except TypeError:
    runner = CliRunner()


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_list_counts_the_rules_each_template_selects() -> None:
    code, out, err = invoke("templates", "list")
    assert code == 0, err
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == builtin_template_names()
    rules = builtin_rules()
    for line in lines:
        name, count = line.split()[:2]
        template = load_template(name)
        assert int(count) == len(template.select(rules)) > 0
        assert line.rstrip().endswith(template.title)


def test_show_lists_rules_with_severity_params_and_controls() -> None:
    code, out, err = invoke("templates", "show", "pss-restricted", "--format", "json")
    assert code == 0, err
    details = json.loads(out)
    assert details["id"] == "pss-restricted" and details["framework"] == "pss"
    ids = [entry["id"] for entry in details["rules"]]
    assert ids == sorted(ids) and len(ids) == len(load_template("pss-restricted").select(builtin_rules()))
    for entry in details["rules"]:
        assert entry["severity"] in ("CRITICAL", "HIGH", "MEDIUM", "LOW")
        assert any(control.startswith("pss:") for control in entry["controls"])

    code, out, err = invoke("templates", "show", "pci-dss")
    assert code == 0, err
    assert out.startswith("pci-dss: PCI DSS v4.0")
    assert "max_image_age_days = 30" in out
    assert "pci-dss-4.0:8.6.2" in out  # secrets rules, by derived control


def test_show_a_template_file_with_a_severity_override(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("id: mine\ntitle: Mine\nframework: pss\nseverity: {MOAT-K8S-011: CRITICAL}\n"
                    "params: {min_id: 20000}\nselect: {rules: [MOAT-K8S-011, MOAT-K8S-061]}\n")
    code, out, err = invoke("templates", "show", str(path), "-f", "json")
    assert code == 0, err
    entries = {entry["id"]: entry for entry in json.loads(out)["rules"]}
    assert entries["MOAT-K8S-011"]["severity"] == "CRITICAL"
    assert entries["MOAT-K8S-061"]["params"] == {"min_id": 20000}


def test_export_to_stdout_and_to_a_file(tmp_path: Path) -> None:
    code, out, err = invoke("templates", "export", "hipaa")
    assert code == 0, err
    assert out == builtin_template_text("hipaa")

    target = tmp_path / "hipaa.yaml"
    code, out, err = invoke("templates", "export", "hipaa", "-o", str(target))
    assert code == 0, err
    assert target.read_text() == builtin_template_text("hipaa")
    assert load_template(str(target)).id == "hipaa"  # the exported copy is a working template


def test_export_never_overwrites_without_force(tmp_path: Path) -> None:
    target = tmp_path / "mine.yaml"
    target.write_text("my edits\n")
    code, out, err = invoke("templates", "export", "soc2", "-o", str(target))
    assert code == 2
    assert err.strip() == f"moat: error: {target}: already exists (use --force to overwrite)"
    assert target.read_text() == "my edits\n"
    code, out, err = invoke("templates", "export", "soc2", "-o", str(target), "--force")
    assert code == 0, err
    assert out == "" and err.strip() == f"wrote {target}"
    assert target.read_text() == builtin_template_text("soc2")


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    typo = tmp_path / "typo.yaml"
    typo.write_text("id: t\ntitle: T\nselect: {rules: [MOAT-K8S-0055]}\n")
    for args, message in [
        (("templates", "show", "nope"), "unknown template 'nope'"),
        (("templates", "export", "nope"), "unknown template 'nope'"),
        (("templates", "show", str(typo)), f"template {typo}: unknown rule MOAT-K8S-0055"),
        (("templates", "show", str(tmp_path / "absent.yaml")), "no such file"),
        (("templates", "export", "soc2", "-o", str(tmp_path)), "is a directory"),
    ]:
        code, out, err = invoke(*args)
        assert code == 2, (args, out, err)
        assert len(err.strip().splitlines()) == 1 and message in err, (args, err)


def test_show_a_template_with_custom_rules(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(
        "rules:\n  - {id: ACME-1, title: Team label, severity: LOW, targets: [kubernetes], description: d,\n"
        "      remediation: r, expression: \"has(object.metadata.labels)\", controls: [cis-kubernetes-1.9:5.7.1]}\n")
    (tmp_path / "t.yaml").write_text("id: t\ntitle: T\nframework: soc2\nrules_file: rules.yaml\n"
                                     "select: {rules: [ACME-1]}\n")
    code, out, err = invoke("templates", "show", str(tmp_path / "t.yaml"), "-f", "json")
    assert code == 0, err
    details = json.loads(out)
    assert details["rules_file"] == str(tmp_path / "rules.yaml")
    [entry] = details["rules"]
    assert entry["id"] == "ACME-1" and entry["source"] == str(tmp_path / "rules.yaml")
    assert "soc2:CC7.1" in entry["controls"]  # derived from the custom rule's own CIS control
