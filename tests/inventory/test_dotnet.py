""".NET analyzer on deps.json and packages.lock.json written in the documented formats.

Debian has no .NET SDK (only Mono and an old NuGet 2 client that writes neither file), so these
fixtures are written by hand after the formats the .NET SDK produces: the deps.json of a
framework-dependent app (shaped like the one the pythonnet wheel ships), a self-contained app with
its runtime pack, and a NuGet lockfile with two target frameworks.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from packageurl import PackageURL

from corpus import prefilter_accepts
from moat.errors import ParseError
from moat.inventory.analyzer import FileInput
from moat.inventory.analyzers.dotnet import DotnetAnalyzer
from moat.model import Package

RUNTIME = {"runtime": {"lib/net6.0/X.dll": {"assemblyVersion": "1.0.0.0", "fileVersion": "1.0.0.0"}}}

APP_DEPS: dict[str, Any] = {
    "runtimeTarget": {"name": ".NETCoreApp,Version=v6.0", "signature": ""},
    "compilationOptions": {},
    "targets": {
        ".NETCoreApp,Version=v6.0": {
            "WebApp/1.0.0": {
                "dependencies": {"Newtonsoft.Json": "13.0.1", "Serilog": "2.12.0", "DataLib": "1.0.0",
                                 "Microsoft.SourceLink.GitHub": "1.1.1"},
                "runtime": {"WebApp.dll": {}},
            },
            "Newtonsoft.Json/13.0.1": {"runtime": {"lib/net6.0/Newtonsoft.Json.dll": {}}},
            "Serilog/2.12.0": {"dependencies": {"System.Memory": "4.5.5"}, **RUNTIME},
            "System.Memory/4.5.5": {"runtime": {"lib/netstandard2.0/System.Memory.dll": {}}},
            "Microsoft.SourceLink.GitHub/1.1.1": {"dependencies": {"Microsoft.SourceLink.Common": "1.1.1"}},
            "Microsoft.SourceLink.Common/1.1.1": {},
            "SQLitePCLRaw.lib.e_sqlite3/2.1.4": {
                "runtimeTargets": {"runtimes/linux-x64/native/libe_sqlite3.so": {"rid": "linux-x64",
                                                                                  "assetType": "native"}}},
            "DataLib/1.0.0": {"dependencies": {"SQLitePCLRaw.lib.e_sqlite3": "2.1.4"},
                              "runtime": {"DataLib.dll": {}}},
        }
    },
    "libraries": {
        "WebApp/1.0.0": {"type": "project", "serviceable": False, "sha512": ""},
        "Newtonsoft.Json/13.0.1": {"type": "package", "serviceable": True, "sha512": "sha512-abc",
                                   "path": "newtonsoft.json/13.0.1", "hashPath": "newtonsoft.json.13.0.1.nupkg.sha512"},
        "Serilog/2.12.0": {"type": "package", "serviceable": True, "sha512": "sha512-def"},
        "System.Memory/4.5.5": {"type": "package", "serviceable": True, "sha512": "sha512-ghi"},
        "Microsoft.SourceLink.GitHub/1.1.1": {"type": "package", "serviceable": True, "sha512": "sha512-jkl"},
        "Microsoft.SourceLink.Common/1.1.1": {"type": "package", "serviceable": True, "sha512": "sha512-mno"},
        "SQLitePCLRaw.lib.e_sqlite3/2.1.4": {"type": "package", "serviceable": True, "sha512": "sha512-pqr"},
        "DataLib/1.0.0": {"type": "project", "serviceable": False, "sha512": ""},
        "Microsoft.NETCore.App.Ref/6.0.0": {"type": "referenceassembly", "serviceable": False, "sha512": ""},
    },
}

SELF_CONTAINED_DEPS: dict[str, Any] = {
    "runtimeTarget": {"name": ".NETCoreApp,Version=v8.0/linux-x64", "signature": ""},
    "targets": {
        ".NETCoreApp,Version=v8.0": {},
        ".NETCoreApp,Version=v8.0/linux-x64": {
            "Tool/1.0.0": {"dependencies": {"runtimepack.Microsoft.NETCore.App.Runtime.linux-x64": "8.0.2"},
                           "runtime": {"Tool.dll": {}}},
            "runtimepack.Microsoft.NETCore.App.Runtime.linux-x64/8.0.2": {
                "runtime": {"System.Private.CoreLib.dll": {"assemblyVersion": "8.0.0.0",
                                                           "fileVersion": "8.0.224.6711"}},
                "native": {"libcoreclr.so": {"fileVersion": "0.0.0.0"}},
            },
        },
    },
    "libraries": {
        "Tool/1.0.0": {"type": "project", "serviceable": False, "sha512": ""},
        "runtimepack.Microsoft.NETCore.App.Runtime.linux-x64/8.0.2": {"type": "runtimepack", "serviceable": False,
                                                                       "sha512": ""},
    },
}

LOCKFILE: dict[str, Any] = {
    "version": 1,
    "dependencies": {
        "net6.0": {
            "Newtonsoft.Json": {"type": "Direct", "requested": "[13.0.1, )", "resolved": "13.0.1",
                                "contentHash": "ppPFpBcvxdsfUonNcvITKqLl3bqxWbDCZIzDWHzjpdAHRFfZe0Dw9HmA0+za13Idy"
                                               "rgJwpkDTDA9fHaxOrt20A=="},
            "Serilog.Sinks.File": {"type": "Direct", "requested": "[5.0.0, )", "resolved": "5.0.0",
                                   "contentHash": "abc=", "dependencies": {"Serilog": "2.10.0"}},
            "Serilog": {"type": "Transitive", "resolved": "2.12.0", "contentHash": "def="},
            "Shared": {"type": "Project", "dependencies": {"Newtonsoft.Json": "[13.0.1, )"}},
        },
        "net8.0": {
            "Newtonsoft.Json": {"type": "Direct", "requested": "[13.0.1, )", "resolved": "13.0.1", "contentHash": "x="},
            "System.Text.Json": {"type": "CentralTransitive", "requested": "[8.0.4, )", "resolved": "8.0.4",
                                 "contentHash": "y=", "dependencies": {"Shared": "1.0.0"}},
            "Serilog": {"type": "Direct", "requested": "[2.12.0, )", "resolved": "2.12.0", "contentHash": "def="},
            "Shared": {"type": "Project"},
        },
    },
}


def analyze(document: Any, path: str) -> list[Package]:
    data = json.dumps(document).encode()
    return DotnetAnalyzer().analyze(FileInput(path, io.BytesIO(data), len(data))).packages


def test_framework_dependent_app() -> None:
    packages = analyze(APP_DEPS, "app/WebApp.deps.json")
    by_name = {p.name: p for p in packages}
    # projects, reference assemblies and compile-time-only packages (SourceLink) are not shipped
    assert set(by_name) == {"Newtonsoft.Json", "Serilog", "System.Memory", "SQLitePCLRaw.lib.e_sqlite3"}
    assert by_name["Newtonsoft.Json"].relationship == "direct"
    assert by_name["Serilog"].relationship == "direct"
    assert by_name["Serilog"].depends_on == ["System.Memory@4.5.5"]
    assert by_name["System.Memory"].relationship == "indirect"
    assert by_name["SQLitePCLRaw.lib.e_sqlite3"].relationship == "indirect"  # native assets only: still shipped
    assert by_name["Newtonsoft.Json"].purl == "pkg:nuget/Newtonsoft.Json@13.0.1"
    assert all(p.type == "nuget" and p.found_in == "app/WebApp.deps.json" for p in packages)
    for package in packages:
        parsed = PackageURL.from_string(package.purl)
        assert (parsed.type, parsed.name, parsed.version) == ("nuget", package.name, package.version)


def test_self_contained_app_reports_the_runtime_pack() -> None:
    packages = analyze(SELF_CONTAINED_DEPS, "opt/tool/Tool.deps.json")
    assert [(p.name, p.version, p.relationship) for p in packages] == [
        ("Microsoft.NETCore.App.Runtime.linux-x64", "8.0.2", "direct")
    ]


def test_deps_json_without_its_runtime_target_keeps_every_package() -> None:
    document = {**APP_DEPS, "runtimeTarget": {"name": ".NETCoreApp,Version=v9.0"}}
    packages = analyze(document, "app/WebApp.deps.json")
    assert {p.name for p in packages} == {
        "Newtonsoft.Json", "Serilog", "System.Memory", "SQLitePCLRaw.lib.e_sqlite3",
        "Microsoft.SourceLink.GitHub", "Microsoft.SourceLink.Common",
    }
    assert all(p.relationship is None and p.depends_on == [] for p in packages)


def test_packages_lock_json() -> None:
    packages = analyze(LOCKFILE, "src/Api/packages.lock.json")
    assert {(p.name, p.version, p.relationship) for p in packages} == {
        ("Newtonsoft.Json", "13.0.1", "direct"),
        ("Serilog.Sinks.File", "5.0.0", "direct"),
        ("Serilog", "2.12.0", "direct"),  # transitive for net6.0, direct for net8.0: direct wins
        ("System.Text.Json", "8.0.4", "indirect"),
    }
    by_name = {p.name: p for p in packages}
    assert by_name["Serilog.Sinks.File"].depends_on == ["Serilog@2.12.0"]  # the resolved version, not the range
    assert by_name["System.Text.Json"].depends_on == []  # a project is not a package
    assert len(packages) == 4  # the same package in two frameworks is reported once


def test_prefilter() -> None:
    analyzer = DotnetAnalyzer()
    assert prefilter_accepts(analyzer, "app/WebApp.deps.json")
    assert prefilter_accepts(analyzer, "src/packages.lock.json")
    assert not prefilter_accepts(analyzer, "src/package-lock.json")
    assert not prefilter_accepts(analyzer, "app/WebApp.runtimeconfig.json")


@pytest.mark.parametrize(
    ("data", "path", "message"),
    [
        (b"{oops", "a.deps.json", "not valid JSON"),
        (b"[1, 2]", "a.deps.json", "not an object"),
        (b'{"libraries": []}', "a.deps.json", "'libraries' is not an object"),
        (b'{"libraries": {"A/1": "package"}}', "a.deps.json", "library A/1 is not an object"),
        (b'{"dependencies": {"net6.0": {"A": {"type": "Direct"}}}}', "packages.lock.json", "no resolved version"),
        (b'{"dependencies": {"net6.0": []}}', "packages.lock.json", "framework net6.0"),
        (b"[" * 100_000 + b"]" * 100_000, "packages.lock.json", "not valid JSON"),
    ],
)
def test_bad_files_are_parse_errors(data: bytes, path: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        DotnetAnalyzer().analyze(FileInput(path, io.BytesIO(data), len(data)))
