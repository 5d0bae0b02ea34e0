"""CI runs the deployment checks instead of skipping them: .ci/run installs every checker the
tests need (when missing, in its one apt-get install) and requires them."""

from __future__ import annotations

import re

from tests.deploy.tools import DEBIAN_PACKAGE, REQUIRE_ENV, ROOT


def test_ci_installs_and_requires_the_deploy_tools() -> None:
    script = (ROOT / ".ci" / "run").read_text()
    assert re.search(rf"^export {REQUIRE_ENV}=1\b", script, re.MULTILINE)
    for program, package in DEBIAN_PACKAGE.items():
        line = f"command -v {program} >/dev/null 2>&1 || packages+=({package})"
        assert line in script, line
    assert script.count("apt-get install") == 1
    # the packages are added before the one install runs
    assert script.index("packages+=(systemd)") < script.index("apt-get install")
