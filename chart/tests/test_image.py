"""The container image and the workflows, checked without a container engine: the Dockerfile
and the workflows lint clean (hadolint, actionlint, installed from requirements.txt), they
build the same platforms the chart and the docs promise, and the version has one source."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

from conftest import CHART

ROOT = CHART.parent
DOCKERFILE = ROOT / "Dockerfile"
WORKFLOWS = ROOT / ".github" / "workflows"
# The linters requirements.txt installs next to this interpreter.
BIN = Path(sys.executable).parent


def lint(tool: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / tool), *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


def dockerfile_arches() -> list[str]:
    """The architectures the build stage's `case "$TARGETARCH"` builds for."""
    text = DOCKERFILE.read_text()
    case = text[text.index('case "$TARGETARCH" in') : text.index("esac")]
    return sorted(a for a in re.findall(r"^\s*(\w+)\)", case, re.MULTILINE))


def release_platforms() -> list[str]:
    release = yaml.safe_load((WORKFLOWS / "release.yml").read_text())
    steps = release["jobs"]["image"]["steps"]
    build = next(s for s in steps if s.get("uses", "").startswith("docker/build-push-action@"))
    return sorted(build["with"]["platforms"].split(","))


def test_hadolint_is_clean():
    out = lint("hadolint", "Dockerfile")
    assert out.returncode == 0, out.stdout + out.stderr


def test_actionlint_is_clean():
    out = lint("actionlint", "-no-color")
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_image_is_built_for_amd64_and_arm64_everywhere_it_is_promised():
    arches = dockerfile_arches()
    assert arches == ["amd64", "arm64"]
    assert release_platforms() == [f"linux/{a}" for a in arches]
    # The README's build command and the chart's nodeSelector documentation say the same.
    platforms = ",".join(f"linux/{a}" for a in arches)
    assert f"docker buildx build --platform {platforms}" in DOCKERFILE.read_text()
    for doc in ("README.md", "docs/install.md"):
        # Compared with line breaks and indentation folded to single spaces.
        assert f"--platform {platforms} " in " ".join((ROOT / doc).read_text().replace("\\\n", " ").split()), doc
    values = (CHART / "values.yaml").read_text()
    assert f"kubernetes.io/arch {' and '.join(arches)}" in values


def test_the_build_stage_cross_compiles_and_every_base_is_pinned():
    froms = re.findall(r"^FROM\s+(.+)$", DOCKERFILE.read_text(), re.MULTILINE)
    assert len(froms) == 2, froms
    # The build stage runs on the builder's platform (cross-compiling, no emulation); the
    # runtime stage is the target platform's.
    assert froms[0].startswith("--platform=$BUILDPLATFORM "), froms[0]
    assert "--platform" not in froms[1], froms[1]
    for line in froms:
        image = line.removeprefix("--platform=$BUILDPLATFORM ").split()[0]
        assert re.fullmatch(r"[\w./-]+:[\w.-]+@sha256:[0-9a-f]{64}", image), f"not pinned by digest: {image}"


def test_one_version_for_the_binary_the_chart_and_the_image():
    cargo = re.search(r'^version = "(.+)"$', (ROOT / "Cargo.toml").read_text(), re.MULTILINE).group(1)
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["appVersion"] == cargo, "chart/Chart.yaml appVersion must equal Cargo.toml's version"
    # The image tag the release pushes is that version, which the chart installs by default.
    release = (WORKFLOWS / "release.yml").read_text()
    assert "tags: ${{ env.IMAGE }}:${{ needs.version.outputs.version }}" in release
    assert yaml.safe_load((CHART / "values.yaml").read_text())["image"]["tag"] == ""
