"""custom_jenkins/plugins.txt against its lock (plugins.lock.json) and the controller image's core.

The test machines cannot reach the update center, so jenkins-plugin-cli cannot resolve the pins here. The
lock holds what each pinned release declares, read from the plugin's own repository at its release tag
(the pom's ``jenkins.version`` and its plugin dependencies, with the versions it is built against, which
become the minimum versions in the plugin's manifest). These tests fail when plugins.txt pins another
version than the lock, when one pinned plugin needs a newer version of another than plugins.txt pins,
or when a plugin needs a newer core than the Dockerfile's jenkins/jenkins image carries.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest

from tests.jenkins.test_controller_image import CUSTOM, dockerfile_stages
from tests.jenkins.test_jenkinsfile import plugins

LOCK = CUSTOM / "plugins.lock.json"


def version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """An ordering key for Jenkins plugin and core versions (2.504.3, 1.30, 728.v902a_273b_8947,
    3.20.0-109.ve43756e2d2b_4): numeric parts compare as numbers and come after textual ones, as in
    Maven's ordering of the releases these are; a commit-hash part (``v902a``) only breaks ties."""
    parts = (p for p in re.split(r"[.\-_]", version) if p)
    return tuple((1, int(p)) if p.isdigit() else (0, p) for p in parts)


def newer(version: str, than: str) -> bool:
    return version_key(version) > version_key(than)


def controller_core() -> str:
    """The Jenkins core of the controller image: ARG CONTROLLER_IMAGE=jenkins/jenkins:X-lts-jdkN's X."""
    preamble, _ = dockerfile_stages(CUSTOM / "Dockerfile")
    args = dict(a.split("=", 1) for k, a in preamble if k == "ARG")
    match = re.fullmatch(r"jenkins/jenkins:(\d+\.\d+\.\d+)-lts-jdk\d+", args["CONTROLLER_IMAGE"])
    assert match, args["CONTROLLER_IMAGE"]
    return match.group(1)


def lock() -> dict[str, Any]:
    locked: dict[str, Any] = json.loads(LOCK.read_text(encoding="utf-8"))["plugins"]
    return locked


def disagreements(pinned: dict[str, str], locked: dict[str, Any], core: str) -> list[str]:
    """Every way plugins.txt (``pinned``), the lock and the controller's core disagree, one line each."""
    problems = [f"{p}: pinned in plugins.txt, missing from the lock" for p in sorted(pinned.keys() - locked)]
    problems += [f"{p}: in the lock, not pinned in plugins.txt" for p in sorted(locked.keys() - pinned)]
    for plugin_id, entry in sorted(locked.items()):
        if plugin_id in pinned and pinned[plugin_id] != entry["version"]:
            problems.append(f"{plugin_id}: plugins.txt pins {pinned[plugin_id]}, the lock {entry['version']}")
        release = f"{plugin_id} {entry['version']}"
        if newer(entry["required_core"], core):
            problems.append(f"{release} needs core {entry['required_core']}, the image has {core}")
        for dep_id, dep in sorted(entry["dependencies"].items()):
            if dep_id in pinned and newer(dep["min"], pinned[dep_id]):
                problems.append(
                    f"{release} needs {dep_id} >= {dep['min']}, plugins.txt pins {pinned[dep_id]}"
                )
    return problems


def test_plugins_txt_the_lock_and_the_core_agree() -> None:
    assert disagreements(plugins(), lock(), controller_core()) == []


def test_every_locked_pin_names_its_source_release() -> None:
    """Each lock entry names its repository's release tag; a continuous-delivery version (N.vHASH) is
    that commit; plugins.txt names the same tag and core in the comment above the pin."""
    text = (CUSTOM / "plugins.txt").read_text(encoding="utf-8")
    for plugin_id, entry in lock().items():
        source = entry["source"]
        assert source["repository"] == f"https://github.com/jenkinsci/{plugin_id}-plugin"
        assert source["tag"] in (entry["version"], f"{plugin_id}-{entry['version']}"), source
        assert re.fullmatch(r"[0-9a-f]{40}", source["commit"]), source
        cd_version = re.fullmatch(r"\d+\.v([0-9a-f_]+)", entry["version"])
        if cd_version:
            assert source["commit"].startswith(cd_version.group(1).replace("_", "")), (plugin_id, source)
        comment = rf"# jenkinsci/{re.escape(plugin_id)}-plugin tag {re.escape(source['tag'])} \("
        comment += rf"{re.escape(source['pom'])}: core {re.escape(entry['required_core'])}\)[^\n]*\n"
        pin = rf"{comment}(#[^\n]*\n)*{re.escape(plugin_id)}:"
        assert re.search(pin, text), f"{plugin_id}: no source comment above the pin"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda pinned, locked: pinned.update({"aws-credentials": "247.v865d3d9cda_f0"}),
            "aws-credentials: plugins.txt pins 247.v865d3d9cda_f0, the lock 262.v0efb_28f71f94",
        ),
        (
            lambda pinned, locked: pinned.update({"credentials-binding": "700.vabc"}),
            "git 5.10.1 needs credentials-binding >= 702.vfe613e537e88, plugins.txt pins 700.vabc",
        ),
        (
            lambda pinned, locked: locked["junit"].update(required_core="2.580.1"),
            "junit 1424.vc64a_edde7777 needs core 2.580.1, the image has 2.568.2",
        ),
        (
            # An optional dependency counts: Jenkins refuses a plugin whose optional dependency is
            # installed older than it declares (pipeline-graph-view 998 needs junit >= 1418).
            lambda pinned, locked: pinned.update({"junit": "1369.v15da_00283f06"}),
            "pipeline-graph-view 998.vc30deece0e36 needs junit >= 1418.v67a_81935603c, "
            "plugins.txt pins 1369.v15da_00283f06",
        ),
        (
            lambda pinned, locked: pinned.update({"nope": "1.0"}),
            "nope: pinned in plugins.txt, missing from the lock",
        ),
    ],
    ids=[
        "pin-not-in-lock",
        "dependency-too-old",
        "core-too-old",
        "optional-dependency-too-old",
        "unlocked-plugin",
    ],
)
def test_the_check_catches_each_disagreement(change: Any, expected: str) -> None:
    pinned, locked = plugins(), copy.deepcopy(lock())
    change(pinned, locked)
    assert expected in disagreements(pinned, locked, controller_core())


def test_version_order() -> None:
    ordered = ["1.29", "1.30", "2.479.3", "2.504.1", "2.504.3", "427", "427.1", "696.v256688029804"]
    ordered += ["702.vfe613e537e88", "728.v902a_273b_8947", "2036.v0b_c2de701dcb_"]
    assert sorted(ordered, key=version_key) == ordered
    assert not newer("2.504.3", "2.504.3") and newer("2.504.10", "2.504.9")
