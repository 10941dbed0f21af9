"""The web console in a real browser: an event in the log to its change in an open page, the
instance list with 1,000 instances, the first page load and what the page ships.

Usage: python bench/web_bench.py [--bootstrap 127.0.0.1:9092] [--boots 200] [--list 1000]
       [--runs 3]

A stack like the cheap browser tests' (every service its own process, four compute agents on
libvirt's test driver in their own processes, so no guest boots) and Debian's headless
Chromium through Selenium (tests/e2e/test_web_console.py's flags):

- event → page: a tenant's instance list open in the page, a MutationObserver in it records
  `Date.now()` when each row first shows RUNNING; `--boots` instances are POSTed at once
  (50 connections) and each one's latency runs from the `occurred_at` of its InstanceStarted
  (the agent's clock, this same machine) to its row's RUNNING, and from the POST's answer to
  it. Baseline, same run and same load: the gateway's own `GET /v1/instances/{id}` latency,
  one request after another on random instances of the run while they boot. Each run is a
  fresh tenant (its instances are deleted after it: the test hosts hold about 1,000);
  `--runs` runs, the median of each percentile.
- the list with `--list` instances (all RUNNING): from navigation (`performance.now()`, which
  counts from it) to the last row in the table; baseline, the API pages the page reads
  (`?limit=200`, one after another) fetched by Python. Median of `--runs`.
- first page load, the HTTP cache disabled: navigation to the login form's field in the
  page; baseline, the same browser loading `/healthz` (a one-line JSON document). Median of
  `--runs`. And what the first load ships: index.html and the files it names, gzipped (-9).

Console click → first byte needs a real guest: tests/e2e/test_web_serial_console.py prints it.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import random
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import aiohttp
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.test_web_console import CHROMEDRIVER, CHROMIUM, FLAGS
from tests.support.api import Api
from tests.support.stack import HostSpec, Stack

from virga_gateway.config import DEFAULT_WEB_ROOT

HOSTS = tuple(HostSpec(f"web-{n}", f"r{n}") for n in range(1, 5))
"""Four test-driver hosts: 256 m1.tiny each (64 threads, vCPUs overcommitted 4 to 1)."""
GET_EVERY = 0.02
"""The baseline's pace: one GET every 20 ms at most (50 a second)."""
WATCH_ROWS = """
window.runningAt = {};
window.arrivedAt = {};
const parse = JSON.parse;
JSON.parse = function (text, reviver) {  // the page parses each change of the stream with it
  const value = parse.call(this, text, reviver);
  if (value?.instance?.status === "RUNNING" && !(value.id in window.arrivedAt))
    window.arrivedAt[value.id] = Date.now();
  return value;
};
const body = document.querySelector("table.list tbody");
const scan = () => {
  const now = Date.now();
  for (const row of body.querySelectorAll("tr[data-id]")) {
    const id = row.dataset.id;
    if (!(id in window.runningAt) && row.querySelector(".status")?.textContent === "RUNNING")
      window.runningAt[id] = now;
  }
};
new MutationObserver(scan).observe(body, { childList: true, subtree: true, characterData: true });
"""
"""Installed on an open list: when each row first shows RUNNING, and when the page first
parsed a change of that instance saying RUNNING (ms since the epoch)."""
WATCH_LIST = """
window.listAt = null;
new MutationObserver((_, observer) => {
  if (document.querySelectorAll("tbody tr[data-id]").length >= %d) {
    window.listAt = performance.now();
    observer.disconnect();
  }
}).observe(document, { childList: true, subtree: true });
"""
"""Evaluated before a page's own script: ms from navigation to the list's last row."""
WATCH_LOGIN = """
window.loginAt = null;
new MutationObserver((_, observer) => {
  if (document.getElementById("token")) {
    window.loginAt = performance.now();
    observer.disconnect();
  }
}).observe(document, { childList: true, subtree: true });
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def chromium(profile: Path) -> WebDriver:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))


def until(probe: Callable[[], Any], seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {seconds} s waiting for {what}")
        time.sleep(0.05)


def open_list(driver: WebDriver, stack: Stack, token: str, tag: str) -> None:
    """A fresh page load of the list, logged in as `token` (kept in the tab's sessionStorage)."""
    driver.get(f"{stack.gateway_url}/#/login")
    driver.execute_script("sessionStorage.setItem('virga.token', arguments[0])", token)
    driver.get(f"{stack.gateway_url}/?{tag}#/instances")
    until(lambda: driver.execute_script("return !!document.querySelector('.live.on')"), 60,
          "the live stream")  # fmt: skip


async def boot(tenant: Api, count: int, prefix: str, until_shown: Callable[[], None]
               ) -> tuple[dict[str, float], list[float]]:  # fmt: skip
    """POSTs `count` instances at once, and GETs them one after another until `until_shown`
    (run in a thread) returns: each id's answer time, and the GETs' latencies."""
    answered: dict[str, float] = {}
    gets: list[float] = []
    done = asyncio.Event()

    async def post(i: int) -> None:
        created = await tenant.create_instance(f"{prefix}-{i}")
        answered[created["id"]] = time.time()

    async def baseline() -> None:
        while not done.is_set():
            if not answered:
                await asyncio.sleep(0.01)
                continue
            iid = random.choice(list(answered))
            began = time.perf_counter()
            await tenant.instance(iid)
            gets.append(time.perf_counter() - began)
            await asyncio.sleep(GET_EVERY)  # a sample of the latency, not a load of its own

    getter = asyncio.create_task(baseline())
    await asyncio.gather(*(post(i) for i in range(count)))
    await asyncio.to_thread(until_shown)
    done.set()
    await getter
    return answered, gets


async def read_stream(tenant: Api, running: dict[str, float], folded: dict[str, float]) -> None:
    """The gateway's stream as a client without a page reads it: when each instance's change
    with status RUNNING arrives, and when the gateway folded it (seconds since the epoch)."""
    headers = {"Authorization": f"Bearer {tenant.token}"}
    url = f"{tenant.base_url}/v1/events/stream"
    async with tenant.session.get(url, headers=headers, timeout=None) as response:
        event = ""
        async for raw in response.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "change":
                change = json.loads(line[6:])
                instance = change.get("instance") or {}
                if instance.get("status") == "RUNNING" and change["id"] not in running:
                    running[change["id"]] = time.time()
                    folded[change["id"]] = datetime.fromisoformat(change["folded_at"]).timestamp()


async def listed(tenant: Api) -> list[Any]:
    items: list[Any] = []
    cursor: str | None = None
    while True:
        query = "?limit=200" + (f"&cursor={cursor}" if cursor else "")
        page = await tenant.call("GET", f"/v1/instances{query}")
        items.extend(page["items"])
        cursor = page["next"]
        if not cursor:
            return items


async def wait_running(tenant: Api, count: int, gone: bool = False) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        items = [i for i in await listed(tenant) if i["status"] != "DELETED"]
        if (not items) if gone else sum(i["status"] == "RUNNING" for i in items) >= count:
            return
        await asyncio.sleep(0.5)
    raise SystemExit(f"instances not {'gone' if gone else 'RUNNING'} after 300 s")


async def started_at(tenant: Api, iid: str) -> float:
    history = await tenant.call("GET", f"/v1/instances/{iid}/events")
    times = [e["occurred_at"] for e in history if e["type"] == "InstanceStarted"]
    return datetime.fromisoformat(times[0]).timestamp()


async def new_tenant(stack: Stack, session: aiohttp.ClientSession, name: str) -> Api:
    admin = Api(session, stack.gateway_url, stack.admin_token)
    _, token = await admin.create_tenant(name)
    return admin.as_token(token)


def event_to_page(stack: Stack, driver: WebDriver, boots: int, run: int) -> dict[str, float]:
    """One run: percentiles (ms) of event→row and answer→row, and of the baseline GET."""

    async def go() -> dict[str, float]:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=50)) as session:
            tenant = await new_tenant(stack, session, f"webbench-{run}")
            open_list(driver, stack, tenant.token, f"run{run}")
            driver.execute_script(WATCH_ROWS)
            seen: dict[str, float] = {}

            arrived: dict[str, float] = {}

            def probe() -> bool:
                seen.update(
                    cast(dict[str, float], driver.execute_script("return window.runningAt"))
                )
                arrived.update(
                    cast(dict[str, float], driver.execute_script("return window.arrivedAt"))
                )
                return len(seen) >= boots

            def shown() -> None:
                until(probe, 120, "every row RUNNING in the page")

            streamed: dict[str, float] = {}
            folded: dict[str, float] = {}
            reader = asyncio.create_task(read_stream(tenant, streamed, folded))
            await asyncio.sleep(0.5)  # connected
            answered, gets = await boot(tenant, boots, f"live{run}", shown)
            reader.cancel()
            started = await asyncio.gather(*(started_at(tenant, iid) for iid in answered))
            from_event = [seen[i] / 1000 - at for i, at in zip(answered, started, strict=True)]
            to_stream = [streamed[i] - at for i, at in zip(answered, started, strict=True)]
            # The hops: the log to the gateway's fold, the fold to the page's parse of the
            # change (the stream's flush and the network), the parse to the row (the render).
            to_fold = [folded[i] - at for i, at in zip(answered, started, strict=True)]
            to_page = [arrived[i] / 1000 - folded[i] for i in answered]
            to_row = [(seen[i] - arrived[i]) / 1000 for i in answered]
            from_answer = [seen[i] / 1000 - at for i, at in answered.items()]
            await asyncio.gather(*(tenant.call("DELETE", f"/v1/instances/{i}") for i in answered))
            await wait_running(tenant, 0, gone=True)
        figures: dict[str, float] = {}
        for name, values in (("event", from_event), ("answer", from_answer), ("get", gets),
                             ("stream", to_stream), ("fold", to_fold), ("page", to_page),
                             ("row", to_row)):  # fmt: skip
            for q in (0.5, 0.95, 0.99):
                figures[f"{name} p{round(q * 100)}"] = percentile(values, q) * 1000
        figures["gets"] = len(gets)
        figures["started after answer"] = (
            statistics.median(at - answered[i] for i, at in zip(answered, started, strict=True))
            * 1000
        )
        return figures

    return asyncio.run(go())


def list_load(stack: Stack, driver: WebDriver, count: int, runs: int) -> tuple[float, float]:
    """Medians (ms) of navigation → `count` rows in the page, and of the API's pages alone."""

    async def fill() -> tuple[str, list[float]]:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=50)) as session:
            tenant = await new_tenant(stack, session, "webbench-list")
            queue = iter(range(count))

            async def worker() -> None:
                for i in queue:
                    await tenant.create_instance(f"list-{i}")

            await asyncio.gather(*(worker() for _ in range(50)))
            await wait_running(tenant, count)
            api: list[float] = []
            for _ in range(runs):
                began = time.perf_counter()
                assert len(await listed(tenant)) == count
                api.append((time.perf_counter() - began) * 1000)
            return tenant.token, api

    token, api = asyncio.run(fill())
    open_list(driver, stack, token, "warm")  # the assets in the cache, as a returning user
    script = driver.execute_cdp_cmd(
        "Page.addScriptToEvaluateOnNewDocument", {"source": WATCH_LIST % count}
    )
    page: list[float] = []
    for run in range(runs):
        driver.get(f"{stack.gateway_url}/?list{run}#/instances")
        page.append(until(lambda: driver.execute_script("return window.listAt"), 60, "the list"))
    driver.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", script)
    return statistics.median(page), statistics.median(api)


def first_load(stack: Stack, driver: WebDriver, runs: int) -> tuple[float, float]:
    """Medians (ms), no HTTP cache: navigation → login field, and navigation → /healthz loaded."""
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": True})
    driver.get(f"{stack.gateway_url}/#/login")
    driver.execute_script("sessionStorage.clear()")
    script = driver.execute_cdp_cmd(
        "Page.addScriptToEvaluateOnNewDocument", {"source": WATCH_LOGIN}
    )
    login: list[float] = []
    health: list[float] = []
    for run in range(runs):
        driver.get(f"{stack.gateway_url}/?first{run}#/login")
        login.append(until(lambda: driver.execute_script("return window.loginAt"), 60, "login"))
        driver.get(f"{stack.gateway_url}/healthz?{run}")
        health.append(until(lambda: driver.execute_script(
            "const n = performance.getEntriesByType('navigation')[0];"
            "return n && n.loadEventEnd > 0 ? n.loadEventEnd : null"), 60, "/healthz"))  # fmt: skip
    driver.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", script)
    driver.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": False})
    return statistics.median(login), statistics.median(health)


def shipped(root: Path) -> tuple[int, int, int, int]:
    """Bytes of the first load (index.html and what it names), raw and gzipped; JS alone too."""
    index = (root / "index.html").read_bytes()
    names = re.findall(rb'(?:src|href)="/?(assets/[^"]+)"', index)
    files = [index, *((root / name.decode()).read_bytes() for name in names)]
    js = [(root / n.decode()).read_bytes() for n in names if n.endswith(b".js")]
    size = sum(len(f) for f in files)
    packed = sum(len(gzip.compress(f, 9)) for f in files)
    return size, packed, sum(len(f) for f in js), sum(len(gzip.compress(f, 9)) for f in js)


def report(runs: list[dict[str, float]], listing: tuple[float, float], count: int,
           first: tuple[float, float], boots: int) -> None:  # fmt: skip
    def med(key: str) -> float:
        return statistics.median(r[key] for r in runs)

    print(f"\nevent → page, {boots} instances booting at once, 4 test-driver hosts; "
          f"median of {len(runs)} run(s), baseline GET /v1/instances/{{id}} in the same run "
          f"({med('gets'):.0f} GETs a run)")  # fmt: skip
    for q in ("p50", "p95", "p99"):
        event, answer, get = med(f"event {q}"), med(f"answer {q}"), med(f"get {q}")
        print(
            f"  {q}: InstanceStarted→row RUNNING {event:8.1f} ms   POST answer→row "
            f"{answer:8.1f} ms   baseline GET {get:6.1f} ms   ratio {event / get:6.1f}x"
        )
    print(
        f"  of which InstanceStarted→its change read from /v1/events/stream by Python: "
        f"p50 {med('stream p50'):.1f} ms  p95 {med('stream p95'):.1f} ms  "
        f"p99 {med('stream p99'):.1f} ms"
    )
    print("  the hops (each one's own percentiles, so they do not add up exactly):")
    for name, what in (("fold", "InstanceStarted's occurred_at → the gateway folds it"),
                       ("page", "the fold → the page parses its change (stream flush, network)"),
                       ("row", "the page parses it → its row shows RUNNING (render)")):  # fmt: skip
        print(
            f"    {what}: p50 {med(f'{name} p50'):.1f}  p95 {med(f'{name} p95'):.1f}  "
            f"p99 {med(f'{name} p99'):.1f} ms"
        )
    for n, r in enumerate(runs, 1):
        print(
            f"    run {n}: event→row p50 {r['event p50']:.1f} p95 {r['event p95']:.1f} "
            f"p99 {r['event p99']:.1f} ms; GET p50 {r['get p50']:.1f} p99 {r['get p99']:.1f} ms"
        )
    print(
        f"  (InstanceStarted's occurred_at - the POST's answer: median "
        f"{med('started after answer'):.1f} ms)"
    )
    page, api = listing
    print(
        f"list of {count} instances: navigation→rendered {page:8.1f} ms   "
        f"baseline API pages alone {api:7.1f} ms   ratio {page / api:5.1f}x"
    )
    login, health = first
    print(
        f"first page load (no cache): navigation→login form {login:8.1f} ms   "
        f"baseline /healthz page {health:6.1f} ms   ratio {login / health:5.1f}x"
    )
    size, packed, js, js_packed = shipped(DEFAULT_WEB_ROOT)
    print(
        f"first load ships: {size / 1000:.1f} kB, {packed / 1000:.1f} kB gzipped; "
        f"of which JS {js / 1000:.1f} kB, {js_packed / 1000:.1f} kB gzipped"
    )
    print("console click → first byte: see tests/e2e/test_web_serial_console.py's printed figure")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--boots", type=int, default=200)
    parser.add_argument("--list", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if not (DEFAULT_WEB_ROOT / "index.html").is_file():
        raise SystemExit("web/dist is not built: run `make web`")
    with tempfile.TemporaryDirectory(prefix="virga-web-bench-") as tmp:
        stack = Stack(args.bootstrap, Path(tmp), HOSTS)
        stack.start()
        driver = chromium(Path(tmp) / "profile")
        try:
            runs = [event_to_page(stack, driver, args.boots, n) for n in range(args.runs)]
            listing = list_load(stack, driver, args.list, args.runs)
            first = first_load(stack, driver, args.runs)
        finally:
            driver.quit()
            stack.stop()
    report(runs, listing, args.list, first, args.boots)


if __name__ == "__main__":
    main()
