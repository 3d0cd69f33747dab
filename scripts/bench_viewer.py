"""Time the viewer against a running portal: first rendered slice and all slices loaded.

    .venv/bin/python scripts/bench_viewer.py --url http://127.0.0.1:8000 --user expert --password ... \\
        --study 1.3.6... --series 1.3.6... [--runs 3] [--screenshot out.png]

Logs in through Django's form, opens /viewer/<study>/<series> with an empty cache, and reads
`window.__viewerStats`, which the viewer fills from its own render and cache events. Targets for
the 99-slice CT on localhost: first slice < 1 s, all slices < 5 s.
"""

import argparse
import json
import statistics
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.e2e.browser import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

TARGET_FIRST_MS = 1000
TARGET_ALL_MS = 5000


def log_in(page, url: str, user: str, password: str) -> None:
    page.goto(f"{url}/accounts/login/?next=/")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.locator("form [type=submit]").first.click()
    page.wait_for_url(lambda u: "/accounts/login/" not in u)


def measure_once(browser, args) -> dict:
    # A fresh context per run: no HTTP cache and no Cornerstone cache carried over.
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    try:
        log_in(page, args.url, args.user, args.password)
        page.goto(f"{args.url}/viewer/{args.study}/{args.series}")
        page.wait_for_function(
            "() => window.__viewerStats && window.__viewerStats.allLoadedMs !== null", timeout=args.timeout * 1000
        )
        stats = page.evaluate("window.__viewerStats")
        stats["crossOriginIsolated"] = page.evaluate("window.crossOriginIsolated")
        if args.screenshot:
            page.screenshot(path=args.screenshot)
        return stats
    except Exception:
        print("browser errors:", *errors, sep="\n  ", file=sys.stderr)
        raise
    finally:
        context.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="portal root, e.g. http://127.0.0.1:8000")
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--study", required=True)
    parser.add_argument("--series", required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=60, help="seconds per run")
    parser.add_argument("--chromium", default=CHROMIUM)
    parser.add_argument("--screenshot", help="save the viewer after the last run")
    parser.add_argument("--json", action="store_true", help="print the raw stats as JSON too")
    args = parser.parse_args()
    args.url = args.url.rstrip("/")

    runs = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
        try:
            for i in range(args.runs):
                stats = measure_once(browser, args)
                runs.append(stats)
                print(
                    f"run {i + 1}: first slice {stats['firstRenderMs']} ms, all {stats['slices']} slices "
                    f"{stats['allLoadedMs']} ms (since navigation: {stats['firstRenderSinceNavigationMs']} / "
                    f"{stats['allLoadedSinceNavigationMs']} ms), failed {stats['failedSlices']}, "
                    f"crossOriginIsolated={stats['crossOriginIsolated']}"
                )
        finally:
            browser.close()
    first = statistics.median(r["firstRenderMs"] for r in runs)
    loaded = statistics.median(r["allLoadedMs"] for r in runs)
    ok = first < TARGET_FIRST_MS and loaded < TARGET_ALL_MS and all(r["failedSlices"] == 0 for r in runs)
    print(
        f"median: time to first rendered slice {first:.0f} ms (target < {TARGET_FIRST_MS}), "
        f"all slices loaded {loaded:.0f} ms (target < {TARGET_ALL_MS}) -> {'OK' if ok else 'MISSED'}"
    )
    if args.json:
        print(json.dumps(runs, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
