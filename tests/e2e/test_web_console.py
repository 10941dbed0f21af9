"""The web console in a real browser: Debian's headless Chromium, driven by Selenium through
Debian's chromedriver (no browser download: Playwright's Python wheel would bring a Node.js
driver of its own and pins browser builds; Selenium talks WebDriver to the system's pair),
against a real stack whose gateway serves the built web/ (`make web` builds it).

Log in; a refused create shows the problem's title and field; create an instance from the
form and see its page; on the list, an instance made
meanwhile appears and turns RUNNING without a reload; then at a phone's width. Screenshots
go to $VIRGA_WEB_SCREENSHOTS when set (docs/screenshots/ holds the committed ones).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.request import Request, urlopen

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select, WebDriverWait
from tests.support.stack import HostSpec, Stack

from virga_gateway.config import DEFAULT_WEB_ROOT

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=1280,800",
)  # fmt: skip
"""As the machine's notes give them: without the background-networking flags Chromium keeps
trying hosts this closed network refuses."""


def call(stack: Stack, method: str, path: str, token: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = Request(f"{stack.gateway_url}{path}", data=data, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    request.add_header("Content-Type", "application/json")
    with urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if not (DEFAULT_WEB_ROOT / "index.html").is_file():
        pytest.fail("web/dist is not built: run `make web` (make test does)")
    stack = Stack(kafka_bootstrap, tmp_path_factory.mktemp("web"), (HostSpec("host-a", "r1"),))
    with stack.running():
        yield stack


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    assert shutil.which(CHROMIUM), "apt-get install chromium"
    assert shutil.which(CHROMEDRIVER), "apt-get install chromium-driver"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def shoot(driver: WebDriver, name: str) -> None:
    folder = os.environ.get("VIRGA_WEB_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(folder) / f"{name}.png"))


def shoot_phone(driver: WebDriver, name: str) -> None:
    """The page at a phone's width (390x844): a screenshot (`<name>-phone`), and nothing wider
    than the screen; then back to 1280x800."""
    driver.set_window_size(390, 844)
    try:
        shoot(driver, f"{name}-phone")
        wider = driver.execute_script(
            "const e = document.documentElement; return e.scrollWidth - e.clientWidth"
        )
        assert wider <= 0, f"{name} is {wider} px wider than a phone's screen"
    finally:
        driver.set_window_size(1280, 800)


def wait(driver: WebDriver, seconds: float = 60.0) -> WebDriverWait[WebDriver]:
    # The pages redraw as changes arrive: an element found just before a redraw goes stale.
    return WebDriverWait(
        driver, seconds, poll_frequency=0.1, ignored_exceptions=[StaleElementReferenceException]
    )


def status_of(driver: WebDriver, instance_id: str) -> str:
    found = driver.execute_script(  # read in one go: the row may be redrawn at any time
        "const e = document.querySelector(arguments[0]); return e ? e.textContent : ''",
        f'tr[data-id="{instance_id}"] .status',
    )
    return str(found)


def test_log_in_create_and_watch_an_instance_run_live(stack: Stack, browser: WebDriver) -> None:
    admin = stack.admin_token
    tenant = call(stack, "POST", "/v1/tenants", admin, {"name": f"web-{uuid.uuid4().hex[:6]}"})
    token = call(stack, "POST", f"/v1/tenants/{tenant['id']}/tokens", admin, {})["token"]

    browser.get(f"{stack.gateway_url}/#/login")
    field = wait(browser).until(lambda d: d.find_element(By.ID, "token"))
    shoot(browser, "login")
    field.send_keys(token)
    field.submit()
    wait(browser).until(lambda d: d.find_element(By.CSS_SELECTOR, ".live.on"))
    assert token not in browser.current_url
    browser.execute_script("window.notReloaded = true")

    # Create from the form: its page opens, with the request in its timeline.
    browser.find_element(By.LINK_TEXT, "Create instance").click()
    name = wait(browser).until(lambda d: d.find_element(By.ID, "name"))
    name.send_keys("not a name!")  # refused: the problem's title and its field are shown
    name.submit()
    problem = wait(browser).until(lambda d: d.find_element(By.CSS_SELECTOR, ".error"))
    assert problem.find_element(By.TAG_NAME, "strong").text
    assert problem.find_element(By.TAG_NAME, "code").text == "name"
    assert name.get_attribute("aria-invalid") == "true"
    name.clear()
    name.send_keys("from-the-form")
    Select(browser.find_element(By.ID, "flavor")).select_by_value("m1.tiny")
    shoot(browser, "create")
    name.submit()
    wait(browser).until(lambda d: "/#/instances/" in d.current_url)
    wait(browser).until(lambda d: "InstanceRequested" in d.find_element(By.TAG_NAME, "ol").text)
    wait(browser, 90).until(
        lambda d: d.find_element(By.CSS_SELECTOR, ".details .status").text == "RUNNING"
    )
    wait(browser).until(lambda d: "InstanceStarted" in d.find_element(By.TAG_NAME, "ol").text)
    shoot(browser, "instance")

    # The list: an instance made elsewhere appears and turns RUNNING, with no reload.
    browser.find_element(By.PARTIAL_LINK_TEXT, "Instances").click()
    wait(browser).until(lambda d: d.find_elements(By.CSS_SELECTOR, "tr[data-id]"))
    made = call(stack, "POST", "/v1/instances", token, {"name": "elsewhere", "flavor": "m1.tiny"})
    wait(browser).until(lambda d: status_of(d, made["id"]) in ("BUILDING", "RUNNING"))
    wait(browser, 90).until(lambda d: status_of(d, made["id"]) == "RUNNING")
    assert browser.execute_script("return window.notReloaded") is True
    shoot(browser, "instances")

    browser.set_window_size(390, 844)  # a phone's width: still usable
    shoot(browser, "instances-phone")
    assert browser.find_element(By.LINK_TEXT, "elsewhere").is_displayed()
