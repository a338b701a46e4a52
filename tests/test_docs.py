"""The manual: it builds with mkdocs --strict, its API page covers the public API, its results page is the
generator's output from the committed records, and every relative link of README.md and docs/ resolves."""
from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

import transferlab
from transferlab.cli.main import main
from transferlab.report.inputs import find_inputs
from transferlab.report.markdown import markdown_page

sys.path.insert(0, str(Path(__file__).parent))  # tests/browser.py, whatever pytest's import mode
from browser import under_ci  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
RESULTS = DOCS / "results" / "15scene.md"
RECORDS = DOCS / "results" / "records"
REGENERATE = "transferlab report --markdown docs/results/records --out docs/results/15scene.md"
PAGES = [ROOT / "README.md", ROOT / "benchmarks" / "README.md", *sorted(DOCS.rglob("*.md"))]

LINK = re.compile(r"!?\[(?:[^\]\\]|\\.)*\]\(([^()\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
INLINE_CODE = re.compile(r"`[^`\n]*`")


def prose(text: str) -> str:
    """``text`` without its code blocks and inline code, where brackets are not links."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def headings(text: str) -> list[str]:
    """The text of every ATX heading outside code blocks, inline markup removed."""
    out = []
    for line in FENCE.sub("", text).splitlines():
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            out.append(re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", m.group(1)))
    return out


def github_slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, each space a hyphen."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def site_slug(heading: str) -> str:
    """Python-Markdown's (mkdocs') anchor: ASCII only, punctuation dropped, runs of spaces and hyphens one hyphen."""
    value = unicodedata.normalize("NFKD", heading).encode("ascii", "ignore").decode()
    return re.sub(r"[-\s]+", "-", re.sub(r"[^\w\s-]", "", value).strip().lower())


def anchors(page: Path) -> set[str]:
    """Anchors that work both on GitHub and in the built site: headings', and explicit ``<a id="…">`` targets."""
    text = page.read_text(encoding="utf-8")
    hs = headings(text)
    return {github_slug(h) for h in hs} & {site_slug(h) for h in hs} | set(re.findall(r'<a id="([^"]+)"', text))


def test_manual_builds_with_mkdocs_strict(tmp_path):
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("mkdocstrings") is None:
        reason = "mkdocs is not installed (pip install -e '.[docs]')"
        if under_ci():
            pytest.fail(f"{reason}: under CI the manual must build")
        pytest.skip(reason)
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stderr[-4000:]}"
    api = (tmp_path / "site" / "api" / "index.html").read_text(encoding="utf-8")
    unrendered = [n for n in transferlab.__all__[1:] if f'id="{transferlab._API[n]}.{n}"' not in api]
    assert not unrendered, f"docs/api.md renders no documentation for {unrendered}"


def test_api_page_has_a_directive_for_every_public_name():
    directives = set(re.findall(r"^::: (\S+)", (DOCS / "api.md").read_text(encoding="utf-8"), re.M))
    public = [n for n in transferlab.__all__ if n != "__version__"]
    missing = [n for n in public if f"{transferlab._API[n]}.{n}" not in directives]
    assert not missing, f"docs/api.md has no '::: MODULE.NAME' directive for {missing}"


def test_results_page_is_the_generators_output_from_the_committed_records():
    inputs = find_inputs([RECORDS])
    assert not inputs.skipped, f"unreadable records: {inputs.skipped}"
    assert inputs.all(), f"no record under {RECORDS}"
    partial = [str(s.path.relative_to(ROOT)) for s in inputs.all()
               if not (s.provenance.dataset and (s.provenance.dataset.train, s.provenance.dataset.test) == (1500, 2985))]
    assert not partial, f"records not of the full 15 Scene split (train 1,500, test 2,985): {partial}"
    expected = markdown_page(inputs, RESULTS.parent, REGENERATE)
    assert RESULTS.read_text(encoding="utf-8") == expected, \
        f"{RESULTS.relative_to(ROOT)} is not the records' page: regenerate it with `{REGENERATE}`"


def test_report_markdown_command_writes_the_results_page(tmp_path, monkeypatch):
    shutil.copytree(RECORDS, tmp_path / "docs" / "results" / "records")
    monkeypatch.chdir(tmp_path)
    _, report, markdown, records, out, page = REGENERATE.split()
    assert main([report, records, out, page, markdown]) == 0  # the options in another order: the same page
    assert (tmp_path / RESULTS.relative_to(ROOT)).read_text(encoding="utf-8") == RESULTS.read_text(encoding="utf-8")


def test_report_markdown_without_records_is_one_line_naming_the_folder(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["report", "--markdown", str(tmp_path / "empty"), "--out", str(tmp_path / "r.md")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{tmp_path / 'empty'}: holds no result.json" in err, err
    assert not (tmp_path / "r.md").exists()


def test_headline_numbers_of_the_readme_are_on_the_results_page():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Results", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|") and not line.startswith("|---")][1:]
    numbers = [n for row in rows for n in re.findall(r"\d+\.\d+", INLINE_CODE.sub("", row))]
    assert len(numbers) >= len(rows), "the README's headline table has lost its figures"
    page = RESULTS.read_text(encoding="utf-8")
    assert not [n for n in numbers if n not in page], "README headline figures missing from docs/results/15scene.md"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_and_image_resolves(page):
    broken = []
    for target in LINK.findall(prose(page.read_text(encoding="utf-8"))):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto: …: not a relative link
            assert "/issues" not in target and "/pull/" not in target, f"{page.name} links to a tracker: {target}"
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target} (no file {dest.relative_to(ROOT) if ROOT in dest.parents else dest})")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target} (no heading #{anchor} in {dest.name})")
    assert not broken, f"{page.relative_to(ROOT)}: broken links: {broken}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_pages_speak_of_the_product_not_the_tracker(page):
    text = page.read_text(encoding="utf-8")
    hits = re.findall(r".{0,30}\b(?:issue|ticket|PR)\s*#?\d+.{0,30}", text, re.I)
    assert not hits, f"{page.relative_to(ROOT)} cites tracker items: {hits}"


def test_readme_shows_the_onnx_script_that_the_deploy_tests_run():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    script = (DOCS / "examples" / "onnx_classify.py").read_text(encoding="utf-8")
    assert f"```python\n{script}```" in readme, "README.md's ONNX script differs from docs/examples/onnx_classify.py"
    assert len(script.splitlines()) <= 21, "the script (docstring line apart) is over 20 lines"
