"""Full-page screenshots of a running catalog's pages (for docs/catalog.md), in headless Chromium:
``python -m neuroptimus.storage.catalog.web.screenshots URL OUTDIR``. The pages shown are the use
cases, the first use case's leaderboard, the run table, a comparison of that use case's runs,
one of its runs and the sign-in page."""

from __future__ import annotations

import argparse
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"  # Debian's; playwright's own download also works (None)
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update"]  # fmt: skip


def _wait_for_figures(page) -> None:
    """Let BokehJS draw every figure on the page before the picture is taken."""
    if page.locator("div[data-root-id]").count():
        page.wait_for_function(
            "() => window.Bokeh && document.querySelectorAll('div[data-root-id]').length"
            " <= Object.keys(Bokeh.index).length", timeout=60_000,
        )  # fmt: skip
        page.wait_for_timeout(800)


def take_screenshots(url: str, folder: str | Path, width: int = 1400,
                     executable: str | None = CHROMIUM) -> list[Path]:  # fmt: skip
    """Save ``01-use-cases.png`` … into ``folder``; returns the files written."""
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 (lazy: Playwright loads only to take screenshots)

    base = url.rstrip("/")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    shots: list[Path] = []
    with sync_playwright() as playwright:
        kwargs = {"executable_path": executable} if executable and Path(executable).exists() else {}
        browser = playwright.chromium.launch(args=ARGS, **kwargs)
        page = browser.new_page(viewport={"width": width, "height": 900})

        def shoot(name: str, address: str) -> None:
            page.goto(address)
            _wait_for_figures(page)
            path = folder / f"{len(shots) + 1:02d}-{name}.png"
            page.screenshot(path=str(path), full_page=True)
            shots.append(path)
            print(path, flush=True)

        shoot("use-cases", f"{base}/")
        cases = page.locator("#use-cases tbody a[href^='/use-cases/']")
        case = cases.first.get_attribute("href") if cases.count() else None
        if case:
            shoot("leaderboard", base + case)
        shoot("runs", f"{base}/runs?sort=final_error")
        if case:
            shoot("compare", f"{base}/compare?use_case={case.rsplit('/', 1)[-1]}")
            best = page.locator("#chosen tbody a[href^='/runs/']")
            if best.count():
                shoot("run", base + best.first.get_attribute("href"))
        shoot("sign-in", f"{base}/sign-in")
        browser.close()
    return shots


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("url", help="the catalog, e.g. http://127.0.0.1:8765")
    parser.add_argument("outdir", help="folder for the PNG files")
    parser.add_argument("--width", type=int, default=1400)
    options = parser.parse_args(argv)
    take_screenshots(options.url, options.outdir, options.width)


if __name__ == "__main__":
    main()
