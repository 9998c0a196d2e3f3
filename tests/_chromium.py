"""``report.html`` as headless Chromium lays it out: a probe script appended to the page writes what the
browser rendered (rows, the plot, painted background colours) into the DOM, which ``--dump-dom`` prints."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

PROBE = """<script>
window.addEventListener("load", () => {
  const img = document.getElementById("metrics-plot");
  const box = img.getBoundingClientRect();
  const probe = document.createElement("div");
  probe.id = "probe";
  probe.dataset.img = [img.complete, img.naturalWidth, img.naturalHeight, Math.round(box.width),
                       Math.round(box.height)].join(",");
  probe.dataset.summary = document.querySelectorAll("#summary tbody tr").length;
  probe.dataset.cases = document.querySelectorAll("#cases tbody tr").length;
  probe.dataset.drift = document.querySelectorAll("#drift tbody tr").length;
  probe.dataset.best = document.querySelector("#summary tr.best td").textContent;
  probe.dataset.bestcolour = getComputedStyle(document.querySelector("#summary tr.best td")).backgroundColor;
  probe.dataset.fail = document.querySelectorAll("#cases td.fail").length;
  const colour = (c) => {
    const el = document.querySelector("#cases td." + c);
    return el ? getComputedStyle(el).backgroundColor : "none";
  };
  const count = (c) => document.querySelectorAll("#cases td." + c).length;
  probe.dataset.colours = ["ok", "warn", "fail"].map(colour).join(";");
  probe.dataset.counts = ["ok", "warn", "fail"].map(count).join(",");
  probe.dataset.headline = document.getElementById("headline").textContent;
  probe.dataset.errors = document.querySelectorAll("#errors tbody tr").length;
  probe.dataset.scripts = document.querySelectorAll("script").length;
  document.body.appendChild(probe);
});
</script>
</body>"""
#: Background colours the report's classes paint: green correct, amber valid but wrong, red failed.
GREEN, AMBER, RED = "rgb(223, 245, 223)", "rgb(255, 241, 201)", "rgb(253, 232, 232)"


def render_in_chromium(report_html: Path, tmp_path: Path) -> dict[str, str]:
    """The probe's ``data-*`` attributes for ``report_html`` rendered by headless Chromium."""
    page = tmp_path / "probe.html"
    page.write_text(report_html.read_text().replace("</body>", PROBE))
    proc = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000", "--window-size=1280,900",
         "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    m = re.search(r'<div id="probe"([^>]*)>', proc.stdout)
    assert m, proc.stderr[-2000:]
    return dict(re.findall(r'data-(\w+)="([^"]*)"', m.group(1)))
