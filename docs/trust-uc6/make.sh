#!/usr/bin/env bash
# The worked example of docs/trust.md, from the repository root with the project installed
# (README command 2 for Playwright and Chromium): use case 6 fitted at four of its six current
# steps, then read — identifiability (no simulation), local sensitivity at the best (24
# evaluations) and held-out validation on the other two steps (at the end of the run).
# Writes this folder's CSVs, report.html and the section screenshots (`make.sh shots`: only
# the screenshots, from the report.html here).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=docs/trust-uc6
store=${STORE:-runs/trust-uc6.zarr}
if [ "${1:-}" != shots ]; then
    rm -rf "$store"
    neuroptimus run tests/data/problems/ca1_detailed_held_out.yaml \
        --population 12 --generations 12 --workers 2 --store "$store"
    neuroptimus analyze "$store" --identifiability --csv "$out/identifiability.csv"
    neuroptimus analyze "$store" --sensitivity --csv "$out/sensitivity.csv"
    cp "$store/report.html" "$out/"
    # paths of this machine (the problem's folder, nrnivmodl) made relative to the repository
    sed "s#\"$PWD/#\"#g" "$store/metadata.json" > "$out/metadata.json"
fi
python - "$out" <<'PY'
# one screenshot per section of the report: from its heading to the next one, at most 1,800 px
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

out = Path(sys.argv[1])
shots = {
    "identifiability.png": "How far to trust the fit: identifiability",
    "sensitivity.png": "Local sensitivity at the best",
    "validation.png": "Held-out validation",
}
with sync_playwright() as driver:
    browser = driver.chromium.launch(
        executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox"]
    )
    page = browser.new_page(viewport={"width": 1200, "height": 1000})
    page.goto((out / "report.html").resolve().as_uri())
    page.wait_for_timeout(5000)  # the figures draw after the page loads
    tops = page.evaluate(
        "() => [...document.querySelectorAll('h2')].map(h => [h.textContent,"
        " h.getBoundingClientRect().top + window.scrollY])"
    )
    for name, heading in shots.items():
        starts = [y for text, y in tops if text == heading]
        if not starts:
            sys.exit(f"no section {heading!r} in the report")
        ends = [y for _, y in tops if y > starts[0]] + [page.evaluate("document.body.scrollHeight")]
        height = min(min(ends) - starts[0], 1800)
        clip = {"x": 0, "y": starts[0], "width": 1200, "height": height}
        page.screenshot(path=str(out / name), clip=clip, full_page=True)
    browser.close()
PY
