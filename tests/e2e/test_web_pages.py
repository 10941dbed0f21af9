"""The web console's volumes, usage and hosts pages in a real browser (Debian's Chromium, as in
test_web_console.py, whose fixtures this module shares), against one real stack: Kafka and
every service as its own process, with the cheap drivers (the compute agents' in-process
driver, which can hot-plug a disk where libvirt's test driver cannot, and volumes in the
storage service's memory), so no guest boots: a real attachment to a real guest is
test_boot_from_volume.py's; here the page must show what the log says, as it says it.

A tenant creates a volume (a refused name first: the problem's title and field), attaches it
to its instance, takes a snapshot of it and sees it listed, deletes that (confirmed), sees the
volume on the instance's page without a reload, detaches, extends (a refused size first) and
deletes it (confirmed); sees this month's usage
with a non-zero line that links to the instance's page; sees no Hosts link and the route says
"admins only". An admin disables a host with a confirmed click and sees it change live, sees
a change made elsewhere arrive, and enables it again; sees a tenant made through the API
appear in the tenants list without a reload; then creates a tenant, issues its token
(shown once; it works), sets its instance quota and sees the price catalogue. Screenshots go to
$VIRGA_WEB_SCREENSHOTS when set (docs/screenshots/ holds the committed ones).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import Select
from tests.e2e.test_web_console import browser, call, shoot, shoot_phone, status_of, wait
from tests.support.stack import HostSpec, Stack

from virga_gateway.config import DEFAULT_WEB_ROOT

__all__ = ["browser"]  # the fixture, shared with the web console's first test

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

HOSTS = (("host-a", "r1"), ("host-b", "r2"))
PRICE_PER_HOUR = "3600"
"""m1.tiny's price: one unit of currency a second, so a few seconds of running show."""
WATCH_CSP = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.cspViolations.push(e.effectiveDirective + " " + e.blockedURI));
"""
"""The chart (SVG) and the capacity bars (<meter>) must need no inline style: none refused."""


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if not (DEFAULT_WEB_ROOT / "index.html").is_file():
        pytest.fail("web/dist is not built: run `make web` (make test does)")
    hosts = tuple(HostSpec(name, rack, libvirt_uri="memory://") for name, rack in HOSTS)
    stack = Stack(kafka_bootstrap, tmp_path_factory.mktemp("web-pages"), hosts)
    with stack.running():
        yield stack


def log_in(driver: WebDriver, stack: Stack, token: str) -> None:
    driver.get(f"{stack.gateway_url}/#/login")
    field = wait(driver).until(lambda d: d.find_element(By.ID, "token"))
    field.send_keys(token)
    field.submit()
    wait(driver).until(lambda d: d.find_element(By.CSS_SELECTOR, ".live.on"))
    driver.execute_script(WATCH_CSP)  # hash routes: it stays for the whole session


def text_of(driver: WebDriver, selector: str) -> str:
    found = driver.execute_script(  # read in one go: the page may redraw at any time
        "const e = document.querySelector(arguments[0]); return e ? e.textContent : ''", selector
    )
    return str(found)


def accept_confirm(driver: WebDriver) -> None:
    wait(driver, 10).until(expected_conditions.alert_is_present())
    driver.switch_to.alert.accept()


def test_a_tenants_volume_usage_and_an_admins_hosts(stack: Stack, browser: WebDriver) -> None:
    admin = stack.admin_token
    month = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    call(stack, "PUT", "/v1/prices", admin, {
        "currency": "EUR", "effective_from": month.isoformat().replace("+00:00", "Z"),
        "flavor_hour": {"m1.tiny": PRICE_PER_HOUR}, "volume_gb_month": "1",
        "egress_gb": "0", "public_ip_hour": "0",
    })  # fmt: skip
    tenant = call(stack, "POST", "/v1/tenants", admin, {"name": f"pages-{uuid.uuid4().hex[:6]}"})
    token = call(stack, "POST", f"/v1/tenants/{tenant['id']}/tokens", admin, {})["token"]
    server = call(stack, "POST", "/v1/instances", token, {"name": "app", "flavor": "m1.tiny"})

    log_in(browser, stack, token)
    browser.execute_script("window.notReloaded = true")
    wait(browser, 90).until(lambda d: status_of(d, server["id"]) == "RUNNING")
    assert not browser.find_elements(By.LINK_TEXT, "Hosts")  # a tenant sees no link

    # Volumes: a refused name shows the problem; a good one appears in the list, live.
    browser.find_element(By.LINK_TEXT, "Volumes").click()
    name = wait(browser).until(lambda d: d.find_element(By.ID, "volume-name"))
    assert not browser.find_elements(By.ID, "volume-tenant")  # a tenant picks no tenant
    name.send_keys("not a name!")
    name.submit()
    problem = wait(browser).until(lambda d: d.find_element(By.CSS_SELECTOR, ".error"))
    assert problem.find_element(By.TAG_NAME, "strong").text
    assert problem.find_element(By.TAG_NAME, "code").text == "name"
    assert name.get_attribute("aria-invalid") == "true"
    name.clear()
    name.send_keys("data")
    name.submit()
    wait(browser).until(lambda d: "available" in text_of(d, "tbody tr[data-id]"))
    shoot(browser, "volumes")
    shoot_phone(browser, "volumes")

    # Its page: attach it to the instance, picked by name; its state follows the stream.
    browser.find_element(By.LINK_TEXT, "data").click()
    wait(browser).until(lambda d: "available" in text_of(d, ".details .status"))
    Select(browser.find_element(By.ID, "attach-instance")).select_by_visible_text("app")
    browser.find_element(By.CSS_SELECTOR, "#attach button").click()
    wait(browser, 60).until(lambda d: text_of(d, ".details .status") == "in-use")
    assert "app (vdb)" in text_of(browser, ".details")

    # A snapshot of it, taken in the page, is listed as it becomes available; then deleted.
    snapshot = browser.find_element(By.ID, "snapshot-name")
    snapshot.send_keys("nightly")
    snapshot.submit()
    taken = "#snapshots tbody tr[data-id]"
    wait(browser, 60).until(lambda d: "available" in text_of(d, taken))
    assert "nightly" in text_of(browser, taken)
    assert browser.find_element(By.CSS_SELECTOR, "#clone-snapshot option").text == "nightly"
    browser.execute_script("window.scrollTo(0, 0)")
    shoot(browser, "volume")
    browser.find_element(By.CSS_SELECTOR, f"{taken} button").click()
    accept_confirm(browser)
    wait(browser, 60).until(lambda d: "No snapshots yet." in text_of(d, "#snapshots tbody"))
    assert not call(stack, "GET", f"/v1/volumes/{volume_id(browser)}", token)["snapshots"]

    # The instance's page lists it, without a reload.
    browser.find_element(By.LINK_TEXT, "app").click()
    wait(browser).until(lambda d: "data vdb" in text_of(d, "ul.volumes"))
    assert browser.execute_script("return window.notReloaded") is True

    # Back on its page: detach it, a refused extend names its field, extend it, delete it.
    browser.find_element(By.CSS_SELECTOR, "ul.volumes a").click()
    detach = wait(browser).until(
        lambda d: d.find_element(By.XPATH, "//button[text()='Detach from app']")
    )
    detach.click()
    wait(browser, 60).until(lambda d: text_of(d, ".details .status") == "available")
    size = browser.find_element(By.ID, "extend-size")
    size.send_keys("1")  # not above its size
    size.submit()
    problem = wait(browser).until(lambda d: d.find_element(By.CSS_SELECTOR, ".error"))
    assert problem.find_element(By.TAG_NAME, "code").text == "size_gb"
    assert size.get_attribute("aria-invalid") == "true"
    size.clear()
    size.send_keys("2")
    size.submit()
    wait(browser, 60).until(lambda d: "2 GB" in text_of(d, ".details"))
    browser.find_element(By.XPATH, "//button[text()='Delete']").click()
    accept_confirm(browser)
    wait(browser, 60).until(lambda d: "deleted" in text_of(d, ".details"))
    browser.find_element(By.PARTIAL_LINK_TEXT, "Volumes").click()
    wait(browser).until(lambda d: "No volumes yet." in text_of(d, "tbody"))

    # Usage: the month so far, with a charged line that leads to the instance's timeline.
    browser.find_element(By.LINK_TEXT, "Usage").click()
    compute = f'tr[data-kind="compute"][data-resource="{server["id"]}"] .amount'
    wait(browser).until(lambda d: text_of(d, compute))

    def charged(driver: WebDriver) -> bool:
        if float(text_of(driver, compute) or 0) > 0:
            return True
        driver.find_element(By.XPATH, "//button[text()='Refresh']").click()
        return False

    wait(browser, 30).until(charged)
    assert browser.find_elements(By.CSS_SELECTOR, "svg.chart rect")
    assert "EUR" in text_of(browser, ".total")
    shoot(browser, "usage")
    browser.set_window_size(390, 844)  # a phone's width
    shoot(browser, "usage-phone")
    browser.set_window_size(1280, 800)
    browser.find_element(By.CSS_SELECTOR, f'tr[data-resource="{server["id"]}"] a').click()
    wait(browser).until(lambda d: "InstanceStarted" in text_of(d, "ol.timeline"))
    assert browser.execute_script("return window.notReloaded") is True
    assert browser.execute_script("return window.cspViolations") == []

    browser.get(f"{stack.gateway_url}/#/hosts")  # a tenant: the route says no
    wait(browser).until(lambda d: "Admins only" in text_of(d, "main"))

    # An admin: hosts by rack; disable (confirmed) and enable, each seen as it happens.
    browser.find_element(By.XPATH, "//button[text()='Log out']").click()
    log_in(browser, stack, admin)
    wait(browser).until(lambda d: d.find_element(By.LINK_TEXT, "Hosts")).click()
    row = 'tr[data-host="host-a"]'
    wait(browser).until(lambda d: "enabled" in text_of(d, f"{row} .scheduling"))
    assert text_of(browser, 'section[data-rack="r2"] tr[data-host]')  # host-b, in its rack
    browser.execute_script("window.notReloaded = true")
    browser.find_element(By.CSS_SELECTOR, f"{row} button").click()
    accept_confirm(browser)
    wait(browser).until(lambda d: "disabled" in text_of(d, f"{row} .scheduling"))
    shoot(browser, "hosts")
    shoot_phone(browser, "hosts")
    browser.find_element(By.CSS_SELECTOR, f"{row} button").click()
    accept_confirm(browser)
    wait(browser).until(lambda d: "enabled" in text_of(d, f"{row} .scheduling"))
    # A change made elsewhere arrives too.
    call(stack, "POST", "/v1/hosts/host-b/actions", admin, {"action": "disable", "reason": "x"})
    wait(browser).until(lambda d: "disabled" in text_of(d, 'tr[data-host="host-b"] .scheduling'))
    call(stack, "POST", "/v1/hosts/host-b/actions", admin, {"action": "enable"})
    wait(browser).until(lambda d: "enabled" in text_of(d, 'tr[data-host="host-b"] .scheduling'))
    assert browser.execute_script("return window.notReloaded") is True
    assert browser.execute_script("return window.cspViolations") == []
    on_behalf(browser, stack, tenant, token)
    admin_pages(browser, stack)


def on_behalf(browser: WebDriver, stack: Stack, tenant: dict[str, Any], token: str) -> None:
    """An admin creates a volume for a tenant, picked by name: the tenant owns it."""
    browser.find_element(By.LINK_TEXT, "Volumes").click()
    picker = wait(browser).until(lambda d: Select(d.find_element(By.ID, "volume-tenant")))
    name = browser.find_element(By.ID, "volume-name")
    name.send_keys("for-them")
    picker.select_by_visible_text(tenant["name"])
    name.submit()
    wait(browser).until(lambda d: "for-them" in text_of(d, "tbody"))
    theirs = call(stack, "GET", "/v1/volumes?limit=200", token)["items"]
    made = [v for v in theirs if v["name"] == "for-them"]
    assert [v["tenant_id"] for v in made] == [tenant["id"]]


def volume_id(browser: WebDriver) -> str:
    return browser.current_url.rsplit("/", 1)[1]


def admin_pages(browser: WebDriver, stack: Stack) -> None:
    """Tenants: one made through the API appears live; create one, issue its token (shown
    once, and it works), set its quota; prices."""
    browser.find_element(By.LINK_TEXT, "Tenants").click()
    field = wait(browser).until(lambda d: d.find_element(By.ID, "tenant-name"))
    browser.execute_script("window.notReloaded = true")
    elsewhere = f"api-{uuid.uuid4().hex[:6]}"
    call(stack, "POST", "/v1/tenants", stack.admin_token, {"name": elsewhere})
    wait(browser).until(lambda d: d.find_element(By.LINK_TEXT, elsewhere))
    assert browser.execute_script("return window.notReloaded") is True
    name = f"made-{uuid.uuid4().hex[:6]}"
    field.send_keys(name)
    field.submit()
    wait(browser).until(lambda d: d.find_element(By.LINK_TEXT, name)).click()
    wait(browser).until(
        lambda d: d.find_element(By.XPATH, "//button[text()='Issue a token']")
    ).click()
    token = wait(browser).until(lambda d: text_of(d, "code.token"))
    quotas = wait(browser).until(lambda d: d.find_element(By.ID, "quota-instances"))
    quotas.clear()
    quotas.send_keys("3")
    quotas.submit()
    own = 'tr[data-resource="instances"] td.muted'
    wait(browser).until(lambda d: text_of(d, own) == "own")
    shoot(browser, "tenant")
    tenant = browser.current_url.rsplit("/", 1)[1]
    quota = call_as(browser, token, "/v1/quotas")
    assert quota["tenant_id"] == tenant
    assert quota["limits"]["instances"] == 3
    browser.find_element(By.LINK_TEXT, "Prices").click()
    wait(browser).until(lambda d: "m1.tiny / hour" in text_of(d, ".prices"))
    assert "EUR" in text_of(browser, ".prices")
    assert browser.execute_script("return window.cspViolations") == []


def call_as(browser: WebDriver, token: str, path: str) -> Any:
    """The new token works: a GET from the page's origin with it."""
    script = """const done = arguments[arguments.length - 1];
    fetch(arguments[1], {headers: {Authorization: "Bearer " + arguments[0]}})
      .then((r) => r.json()).then(done, (e) => done(String(e)));"""
    return browser.execute_async_script(script, token, path)
