"""The serial console in the web console, in a real browser (Debian's headless Chromium through
chromedriver, as tests/e2e/test_web_console.py) against a real stack whose guest is Virga's
guest image under qemu:///system (as tests/e2e/test_consoles.py).

On the instance's page a click opens the console: xterm.js shows the guest shell's prompt, a
command typed into the terminal is answered there. The page's strict CSP lets the same-origin
WebSocket through (connect-src 'self') and refuses only the <style> elements xterm.js writes,
whose rules the bundle carries instead (the rows' colour comes from it). A session opened
elsewhere takes the console over, and the page says so; once the instance is stopped, the
409's title is shown. A screenshot goes to $VIRGA_WEB_SCREENSHOTS (as console.png) when set.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import aiohttp
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from tests.e2e.test_web_console import browser, call, shoot, wait
from tests.support.domains import remove_tagged
from tests.support.ports import free_port
from tests.support.stack import HostSpec, Stack

from virga_devstack.guest import ensure_guest
from virga_gateway.config import DEFAULT_WEB_ROOT

__all__ = ["browser"]  # the fixture, shared with the web console's first test

pytestmark = [pytest.mark.kafka, pytest.mark.e2e, pytest.mark.libvirt, pytest.mark.timeout(600)]

URI = "qemu:///system"
HOST = "web-console-host"
TAG = f"e2e-webconsole-{uuid.uuid4().hex[:8]}"
"""The name of this module's instances, which their domains carry in their metadata."""
PROMPT = "/ #"
WATCH_CSP = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.cspViolations.push(e.effectiveDirective + " " + e.blockedURI));
"""


@pytest.fixture(scope="module")
def stack(
    libvirtd: None, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    if not (DEFAULT_WEB_ROOT / "index.html").is_file():
        pytest.fail("web/dist is not built: run `make web` (make test does)")
    guest = ensure_guest()
    stack = Stack(
        kafka_bootstrap,
        tmp_path_factory.mktemp("web-console-stack"),
        (HostSpec(HOST, "rack-1", libvirt_uri=URI),),
        guest_kernel=(str(guest.kernel), str(guest.initrd), guest.cmdline),
        compute_env={"VIRGA_CONSOLE_PORT": str(free_port()), "VIRGA_STOP_GRACE_SECONDS": "10"},
    )
    try:
        with stack.running():
            yield stack
    finally:
        remove_tagged(URI, TAG)


def wait_status(stack: Stack, token: str, instance_id: str, status: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while (seen := call(stack, "GET", f"/v1/instances/{instance_id}", token)["status"]) != status:
        assert time.monotonic() < deadline, f"{instance_id} is {seen}, not {status}"
        time.sleep(0.5)


def screen_text(driver: WebDriver) -> str:
    """What the terminal shows (xterm's DOM renderer: one element per row)."""
    rows = driver.execute_script(
        "return [...document.querySelectorAll('.console-screen .xterm-rows > div')]"
        ".map((r) => r.textContent.replace(/\\u00a0/g, ' '))"
    )
    return "\n".join(rows)


def console_state(driver: WebDriver) -> str:
    found = driver.execute_script(
        "const e = document.querySelector('.console-state'); return e ? e.dataset.state : ''"
    )
    return str(found)


def type_into(driver: WebDriver, keys: str) -> None:
    driver.find_element(By.CSS_SELECTOR, ".console-screen .xterm-helper-textarea").send_keys(keys)


async def take_over(stack: Stack, token: str, instance_id: str, driver: WebDriver) -> None:
    """Open a second session from elsewhere: the page's session is closed, and says why."""
    ticket = call(stack, "POST", f"/v1/instances/{instance_id}/console", token)
    async with aiohttp.ClientSession() as session, session.ws_connect(ticket["url"]) as ws:
        await ws.send_bytes(b"\r")
        seen = b""
        while PROMPT.encode() not in seen:
            seen += await ws.receive_bytes(timeout=30)
        await asyncio.to_thread(wait(driver, 30).until, lambda d: console_state(d) == "taken-over")


def test_a_tenant_types_into_its_guests_console_in_the_page(
    stack: Stack, browser: WebDriver
) -> None:
    admin = stack.admin_token
    tenant = call(stack, "POST", "/v1/tenants", admin, {"name": f"webcon-{uuid.uuid4().hex[:6]}"})
    token = call(stack, "POST", f"/v1/tenants/{tenant['id']}/tokens", admin, {})["token"]
    made = call(stack, "POST", "/v1/instances", token, {"name": f"{TAG}-a", "flavor": "m1.tiny"})
    instance_id = made["id"]
    wait_status(stack, token, instance_id, "RUNNING", 180)

    browser.get(f"{stack.gateway_url}/#/login")
    field = wait(browser).until(lambda d: d.find_element(By.ID, "token"))
    field.send_keys(token)
    field.submit()
    wait(browser).until(lambda d: d.find_element(By.CSS_SELECTOR, ".live.on"))
    browser.get(f"{stack.gateway_url}/#/instances/{instance_id}")
    opener = wait(browser).until(lambda d: d.find_element(By.CSS_SELECTOR, ".console-open"))
    browser.execute_script(WATCH_CSP)
    clicked = time.monotonic()
    opener.click()
    wait(browser).until(lambda d: console_state(d) == "open")
    type_into(browser, Keys.ENTER)
    # TCG: the guest may still be booting; Enter again until the shell answers.
    deadline = time.monotonic() + 180
    while PROMPT not in screen_text(browser):
        assert time.monotonic() < deadline, screen_text(browser)
        type_into(browser, Keys.ENTER)
        time.sleep(2)
    first_prompt = time.monotonic() - clicked
    type_into(browser, "echo hi-$((40+2))" + Keys.ENTER)
    wait(browser, 30).until(lambda d: "hi-42" in screen_text(d))
    type_into(browser, "uname" + Keys.ENTER)
    wait(browser, 30).until(lambda d: "Linux" in screen_text(d))
    # The keyboard is not trapped: Ctrl-] leaves the terminal for the next control (the
    # Timeline's first link, or Disconnect), and the guest got no byte of it.
    assert "Ctrl-]" in browser.find_element(By.CSS_SELECTOR, ".console-hint").text
    type_into(browser, Keys.CONTROL + "]")
    left = browser.execute_script(
        "const a = document.activeElement;"
        "return a && !a.closest('.console-screen') && a.matches('a, button') ? a.outerHTML : null"
    )
    assert left, "the focus stayed in the terminal"
    type_into(browser, "echo still-$((1+1))" + Keys.ENTER)  # clicked back in: it types again
    wait(browser, 30).until(lambda d: "still-2" in screen_text(d))
    browser.execute_script("document.querySelector('.console').scrollIntoView()")
    shoot(browser, "console")

    # The strict CSP held: no connection or script was refused, only xterm's <style>
    # elements, whose rules terminal.css carries (white rows on black).
    refused: list[str] = browser.execute_script("return window.cspViolations")
    assert all(v.startswith("style-src") for v in refused), refused
    colour = browser.execute_script(
        "return getComputedStyle(document.querySelector('.console-screen .xterm-rows')).color"
    )
    assert colour == "rgb(255, 255, 255)"
    assert token not in browser.current_url

    asyncio.run(take_over(stack, token, instance_id, browser))
    assert "newer session" in browser.find_element(By.CSS_SELECTOR, ".console-state").text

    call(stack, "POST", f"/v1/instances/{instance_id}/actions", token, {"action": "stop"})
    wait_status(stack, token, instance_id, "STOPPED", 120)
    browser.find_element(By.CSS_SELECTOR, ".console-open").click()  # "Reconnect"
    wait(browser).until(lambda d: console_state(d) == "refused")
    title = browser.find_element(By.CSS_SELECTOR, ".console-state .error strong").text
    assert title == "Conflict with the current state"
    call(stack, "DELETE", f"/v1/instances/{instance_id}", token)
    wait_status(stack, token, instance_id, "DELETED", 120)
    print(f"web console: {first_prompt:.2f} s from the click to the guest's prompt ({refused})")
