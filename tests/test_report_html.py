"""`snakemake --report report.html` shows the study in a real browser: headless Chromium runs the viewer's
JavaScript, opens an entry the way a reader does (category, then the entry's eye button) and the entry's
rendered page must hold the numbers of the file it was made from.

The viewer opens each entry in an iframe from a data URI; the frame's document is read from the page
with web security off (a data URI has its own origin). Chromium is the Debian package `chromium`: under
CI=true as root the test installs it with apt, elsewhere it is skipped when missing.
"""

from __future__ import annotations

import csv
import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from workflow_helpers import TINY_RUNS, complete_state, snakemake, write_config, write_evaluation

pytestmark = pytest.mark.slow

VIEWER_DRIVER = """
(async () => {
  const out = document.createElement("pre");
  out.id = "clipo-entry";
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const until = async (find, what) => {
    for (let i = 0; i < 200; i++) { const el = find(); if (el) return el; await sleep(50); }
    throw new Error("not found: " + what);
  };
  try {
    const menu = await until(() => [...document.querySelectorAll("a")].find(
      (a) => a.textContent.trim() === CATEGORY), "menu entry " + CATEGORY);
    menu.click();
    const row = await until(() => [...document.querySelectorAll("tr")].find((tr) =>
      [...tr.querySelectorAll("td")].some((td) => td.textContent.trim() === LABEL)), "entry " + LABEL);
    row.querySelector("td:last-child a").click();
    const frame = await until(() => document.querySelector("iframe"), "an inline view (iframe)");
    const body = await until(() => frame.contentDocument && frame.contentDocument.body
      && frame.contentDocument.body.innerText.trim() && frame.contentDocument.body, "the entry's text");
    out.textContent = "SHOWN\\n" + body.innerText;
  } catch (e) {
    out.textContent = "FAILED " + e.message;
  }
  document.body.appendChild(out);
})();
"""


def _chromium() -> str:
    found = shutil.which("chromium")
    if found:
        return found
    if os.environ.get("CI") == "true" and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True, env=env, capture_output=True)
        return shutil.which("chromium")
    pytest.skip("headless Chromium not installed (Debian package `chromium`; CI=true as root installs it)")


def _dump_dom(chromium: str, page: Path, profile: Path) -> str:
    proc = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-web-security",
         f"--user-data-dir={profile}", "--virtual-time-budget=20000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def open_entry(chromium: str, report: Path, category: str, label: str, work: Path) -> str:
    """The text a reader sees after opening entry ``label`` of ``category`` in the report viewer."""
    source = report.read_text(encoding="utf-8")
    end = source.rindex("</body>")  # the last one: the bundled libraries hold the string too
    setup = f"const CATEGORY = {json.dumps(category)}, LABEL = {json.dumps(label)};"
    page = work / f"open-{re.sub(r'[^a-z0-9]+', '-', label.lower())}.html"
    page.write_text(source[:end] + f"<script>{setup}{VIEWER_DRIVER}</script>" + source[end:], encoding="utf-8")
    dom = _dump_dom(chromium, page, work / "profile")
    shown = re.search(r'<pre id="clipo-entry">(.*?)</pre>', dom, re.S)
    assert shown, "the viewer's page never ran the driver"
    text = html.unescape(shown.group(1))
    assert text.startswith("SHOWN\n"), text
    return text


@pytest.fixture(scope="module")
def snakemake_report(tmp_path_factory):
    """A tiny run set's analysis for real (training and evaluation `--touch`ed, evaluations written
    without a model), then `snakemake --report report.html`."""
    work = tmp_path_factory.mktemp("html-report")
    config = write_config(work / "no-figures.yaml", figures=[])  # figures need trained models
    complete_state(work, config)
    results = work / "results" / "tiny"
    for run in TINY_RUNS:
        write_evaluation(results, run, n_problems=12)
    proc = snakemake(work, "--cores", "1", "--configfile", str(config),
                     "--forcerun", "tables", "significance", "build_report")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    proc = snakemake(work, "--report", "report.html", "--configfile", str(config))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return work, results


def test_the_viewer_lands_on_the_description_with_ordered_sections(snakemake_report, tmp_path):
    work, _ = snakemake_report
    dom = html.unescape(_dump_dom(_chromium(), work / "report.html", tmp_path / "profile"))
    assert "This is not the paper's experiment." in dom
    assert "training steps per run: 2" in dom
    menu = [m for m in re.findall(r"<span>(\d\. [A-Z][a-z]+)</span>", dom)]
    assert menu == ["1. Summary", "2. Tables", "3. Significance"]


def test_table_1_shows_inline_with_its_numbers(snakemake_report, tmp_path):
    work, results = snakemake_report
    shown = open_entry(_chromium(), work / "report.html", "2. Tables", "Table 1 — main results", tmp_path)
    rows = list(csv.reader((results / "tables" / "table1.csv").open(encoding="utf-8")))[1:5]  # the Pass@1 rows
    lines = {}
    for line in shown.splitlines():  # the first row of each label: the step-checked sections repeat them below
        if "\t" in line:
            lines.setdefault(line.split("\t")[0], line)
    assert [r[0] for r in rows] == ["Base Model", "GRPO", "GRPO+CLIPO", "Δ"]
    for label, *values in rows:
        assert re.findall(r"[+-]?\d+\.\d+", lines[label]) == [v for v in values if v], label


def test_significance_and_write_up_show_inline(snakemake_report, tmp_path):
    work, results = snakemake_report
    chromium = _chromium()
    boot = list(csv.DictReader((results / "significance" / "bootstrap.csv").open(encoding="utf-8")))
    shown = open_entry(chromium, work / "report.html", "3. Significance", "Paired bootstrap: every Δ, 95% CI",
                       tmp_path)
    avg = next(r for r in boot if r["benchmark"] == "Avg.")
    assert f"GRPO+InfoNCE s0\tAvg.\t{avg['n_problems']}\t{float(avg['delta']):+.2f}" in shown

    shown = open_entry(chromium, work / "report.html", "1. Summary",
                       "Write-up: settings, caveats, every Δ with its interval", tmp_path)
    assert shown.index("The run set") < shown.index("Summary") < shown.index("Table 1 (mini track)")
    assert "Not the paper's experiment." in shown
    assert (f"GRPO+InfoNCE s0 {float(avg['delta']):+.2f} [{float(avg['ci_low']):+.2f}, "
            f"{float(avg['ci_high']):+.2f}]") in shown
