"""The web console's network, security group, keypair, image, router and floating IP pages in
a real browser (Debian's Chromium, as in test_web_console.py, whose fixtures this module
shares), against one real stack with the cheap drivers (test_web_pages.py's pattern): Kafka,
every service as its own process, the compute agent's in-process driver, images in the
storage service's memory, the network controller but no network agent. So what only a host's
agent confirms never happens here: the instance's port is never plugged (so the instance does
not reach RUNNING) and a floating IP stays `DOWN` once associated (its host would make it
`ACTIVE`: test_floating_ip.py proves the data path on qemu:///system); the page must show
what the log says, as it says it.

A tenant creates a network (a refused CIDR first: the problem's title and field), a security
group with a rule (then deletes the rule, confirmed), imports a keypair, uploads a small image
and sees the bar reach 100% and the image `available`; creates a router on the external
network the admin made through the API, attaches the network from the router's page and sees
it on the network's page with its instance's port; allocates a floating IP and associates it
with the instance's port (picked by the instance's name), sees it on the instance's page,
dissociates and releases it. No reload, no CSP violation. Screenshots go to
$VIRGA_WEB_SCREENSHOTS when set (docs/screenshots/ holds the committed ones).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select
from tests.e2e.test_web_console import browser, call, shoot, shoot_phone, wait
from tests.e2e.test_web_pages import accept_confirm, log_in, text_of
from tests.support.stack import HostSpec, Stack

from virga_gateway.config import DEFAULT_WEB_ROOT

__all__ = ["browser"]  # the fixture, shared with the web console's first test

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

PUBLIC_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPM07d560gkPwypXVpoPoOQqGWcLx9E/PnBsPF5uG21p me@laptop"
)
"""docs/api.md's example key (a valid ed25519 point)."""
IMAGE_BYTES = 4 * 1024 * 1024
"""A raw image of zeros: big enough for the upload to report progress on its way."""


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if not (DEFAULT_WEB_ROOT / "index.html").is_file():
        pytest.fail("web/dist is not built: run `make web` (make test does)")
    hosts = (HostSpec("host-a", "r1", libvirt_uri="memory://"),)
    stack = Stack(kafka_bootstrap, tmp_path_factory.mktemp("web-net"), hosts)
    with stack.running():
        yield stack


def until(read: Callable[[], Any], good: Callable[[Any], bool], seconds: float = 60) -> Any:
    """Reads until `good` holds (an API view's state), for the test's own API calls."""
    deadline = time.monotonic() + seconds
    while True:
        value = read()
        if good(value):
            return value
        assert time.monotonic() < deadline, value
        time.sleep(0.2)


def click(driver: WebDriver, xpath: str) -> None:
    """Clicks what `xpath` finds, once found (again if a redraw replaced it meanwhile)."""

    def clicked(d: WebDriver) -> bool:
        d.find_element(By.XPATH, xpath).click()
        return True

    wait(driver).until(clicked)


def submit_invalid(driver: WebDriver, field_id: str, value: str, field: str) -> None:
    """Sends a refused value: the problem shows its title and names `field`, marked."""
    control = wait(driver).until(lambda d: d.find_element(By.ID, field_id))
    control.send_keys(value)
    control.submit()
    problem = wait(driver).until(lambda d: d.find_element(By.CSS_SELECTOR, ".error"))
    assert problem.find_element(By.TAG_NAME, "strong").text
    assert problem.find_element(By.TAG_NAME, "code").text == field
    assert control.get_attribute("aria-invalid") == "true"
    control.clear()


def test_a_tenants_networks_groups_keys_images_routers_and_floating_ips(
    stack: Stack, browser: WebDriver, tmp_path: Path
) -> None:
    admin = stack.admin_token
    public = call(stack, "POST", "/v1/external-networks", admin, {
        "name": "public", "cidr": "198.51.100.0/24", "gateway_ip": "198.51.100.1",
        "host_interface": "br-ex",
    })  # fmt: skip
    until(lambda: call(stack, "GET", f"/v1/external-networks/{public['id']}", admin),
          lambda v: v["status"] == "ACTIVE")  # fmt: skip
    tenant = call(stack, "POST", "/v1/tenants", admin, {"name": f"net-{uuid.uuid4().hex[:6]}"})
    token = call(stack, "POST", f"/v1/tenants/{tenant['id']}/tokens", admin, {})["token"]
    log_in(browser, stack, token)
    browser.execute_script("window.notReloaded = true")

    # Networks: a CIDR with host bits set is refused, naming `cidr`; a good one turns ACTIVE.
    browser.find_element(By.LINK_TEXT, "Networks").click()
    wait(browser).until(lambda d: d.find_element(By.ID, "network-name")).send_keys("web")
    submit_invalid(browser, "network-cidr", "10.0.0.1/24", "cidr")
    cidr = browser.find_element(By.ID, "network-cidr")
    cidr.send_keys("10.0.0.0/24")
    cidr.submit()
    wait(browser).until(lambda d: "ACTIVE" in text_of(d, "tbody tr[data-id]"))
    network_id = browser.find_element(By.CSS_SELECTOR, "tbody tr[data-id]").get_attribute("data-id")
    shoot(browser, "networks")
    shoot_phone(browser, "networks")
    server = call(stack, "POST", "/v1/instances", token,
                  {"name": "app", "flavor": "m1.tiny", "network_id": network_id})  # fmt: skip

    # A security group: created, a rule added (its port shows), then deleted (confirmed).
    browser.find_element(By.LINK_TEXT, "Security groups").click()
    wait(browser).until(lambda d: "default" in text_of(d, "tbody"))
    name = browser.find_element(By.ID, "group-name")
    name.send_keys("ssh")
    name.submit()
    wait(browser).until(lambda d: text_of(d, "h1") == "ssh")
    Select(browser.find_element(By.ID, "rule-protocol")).select_by_visible_text("tcp")
    browser.find_element(By.ID, "rule-port-min").send_keys("22")
    submit_invalid(browser, "rule-remote-cidr", "192.0.2.0/33", "remote_cidr")
    browser.find_element(By.ID, "rule-remote-cidr").send_keys("192.0.2.0/24")
    browser.find_element(By.CSS_SELECTOR, "#add-rule button").click()
    rule = "tbody tr[data-id]"
    wait(browser).until(lambda d: "192.0.2.0/24" in text_of(d, rule))
    assert "ingress" in text_of(browser, rule)
    assert "22" in text_of(browser, rule)
    shoot(browser, "security-group")
    click(browser, "//button[text()='Delete rule']")
    accept_confirm(browser)
    wait(browser).until(lambda d: "No rules" in text_of(d, "tbody"))

    # A keypair, imported: its fingerprint shows.
    browser.find_element(By.LINK_TEXT, "Keypairs").click()
    wait(browser).until(lambda d: d.find_element(By.ID, "keypair-name")).send_keys("laptop")
    browser.find_element(By.ID, "keypair-key").send_keys(PUBLIC_KEY)
    browser.find_element(By.CSS_SELECTOR, "#import-keypair button").click()
    wait(browser).until(lambda d: "SHA256:" in text_of(d, 'tr[data-name="laptop"]'))
    shoot(browser, "keypairs")

    # An image, uploaded from a file: the bar reaches 100% and the image is available.
    image = tmp_path / "tiny.raw"
    image.write_bytes(bytes(IMAGE_BYTES))
    browser.find_element(By.LINK_TEXT, "Images").click()
    wait(browser).until(lambda d: d.find_element(By.ID, "image-file")).send_keys(str(image))
    assert browser.find_element(By.ID, "image-name").get_attribute("value") == "tiny"
    browser.find_element(By.CSS_SELECTOR, "#upload-image button").click()
    wait(browser, 120).until(lambda d: "available" in text_of(d, "tbody tr[data-id]"))
    assert text_of(browser, "#upload-percent") == "100%"
    assert browser.find_element(By.ID, "upload-progress").get_attribute("value") == "100"
    assert "4.0 MiB" in text_of(browser, "tbody tr[data-id]")
    shoot(browser, "images")
    shoot_phone(browser, "images")

    # A router on the admin's external network; the network attached from the router's page.
    browser.find_element(By.LINK_TEXT, "Routers").click()
    wait(browser).until(lambda d: d.find_element(By.ID, "router-name")).send_keys("edge")
    external = wait(browser).until(lambda d: Select(d.find_element(By.ID, "router-external")))
    external.select_by_visible_text("public (198.51.100.0/24)")
    browser.find_element(By.CSS_SELECTOR, "#create-router button").click()
    wait(browser).until(lambda d: "ACTIVE" in text_of(d, "tbody tr[data-id]"))
    assert "198.51.100." in text_of(browser, "tbody tr[data-id]")
    click(browser, "//a[text()='edge']")
    wait(browser).until(lambda d: d.find_element(By.XPATH, "//option[starts-with(., 'web ')]"))
    browser.find_element(By.CSS_SELECTOR, "#add-interface button").click()
    wait(browser).until(lambda d: "10.0.0.1" in text_of(d, "tr[data-network]"))
    shoot(browser, "router")

    # The network's page: attached to the router, with the instance's port.
    click(browser, "//tr[@data-network]//a")
    wait(browser).until(lambda d: "Attached to router edge" in text_of(d, ".attachment"))
    wait(browser, 90).until(lambda d: "app" in text_of(d, "tbody tr[data-id]"))
    assert "10.0.0." in text_of(browser, "tbody tr[data-id]")
    shoot(browser, "network")

    # A floating IP: allocated, associated with the instance's port (by its name), live.
    browser.find_element(By.LINK_TEXT, "Floating IPs").click()
    wait(browser).until(lambda d: d.find_element(By.CSS_SELECTOR, "#allocate-fip button")).click()
    row = "tbody tr[data-id]"
    wait(browser).until(lambda d: "198.51.100." in text_of(d, row) and "DOWN" in text_of(d, row))
    mine = "//option[starts-with(., 'app (10.0.0.')]"  # the instance's port, by its name
    wait(browser).until(lambda d: d.find_element(By.XPATH, mine))
    click(browser, "//button[text()='Associate']")
    wait(browser).until(lambda d: d.find_elements(By.XPATH, "//button[text()='Dissociate']"))
    assert "app (10.0.0." in text_of(browser, f"{row} .target")
    assert "DOWN" in text_of(browser, f"{row} .status")  # no network agent: nobody plumbs it
    address = text_of(browser, f"{row} td")
    shoot(browser, "floating-ips")

    # The instance's page lists it; a dissociation made elsewhere arrives there too.
    browser.execute_script("location.hash = arguments[0]", f"#/instances/{server['id']}")
    wait(browser).until(lambda d: text_of(d, ".floating-ips") == address)
    fip = call(stack, "GET", "/v1/floating-ips", token)["items"][0]
    call(stack, "PUT", f"/v1/floating-ips/{fip['id']}", token, {"port_id": None})
    wait(browser).until(lambda d: text_of(d, ".floating-ips") == "—")

    # Released from its page (confirmed).
    browser.find_element(By.LINK_TEXT, "Floating IPs").click()
    click(browser, "//button[text()='Release']")
    accept_confirm(browser)
    wait(browser).until(lambda d: "No floating IPs yet." in text_of(d, "tbody"))
    assert browser.execute_script("return window.notReloaded") is True
    assert browser.execute_script("return window.cspViolations") == []
