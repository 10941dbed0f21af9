"""Bearer tokens resolve to principals; every refusal is the same 401."""

from __future__ import annotations

import pytest
from tests.unit.gateway.events import at, envelope, fold

from virga_events.catalog import api
from virga_gateway.auth import Principal, authenticate
from virga_gateway.problems import Problem
from virga_gateway.state import GatewayState
from virga_gateway.tokens import derive_token, token_sha256

SECRET = b"k" * 32
TENANT_TOKEN = derive_token(SECRET, "tok1")
SHORT_TOKEN = derive_token(SECRET, "tok2")


def state() -> GatewayState:
    return fold(
        envelope(api.TokenIssued(token_sha256=token_sha256("root"), role="admin"), "adm"),
        envelope(
            api.TokenIssued(token_sha256=token_sha256(TENANT_TOKEN), role="tenant"),
            "tok1",
            tenant="t1",
        ),
        envelope(
            api.TokenIssued(
                token_sha256=token_sha256(SHORT_TOKEN), role="tenant", expires_at=at(60)
            ),
            "tok2",
            tenant="t1",
        ),
    )


def test_tokens_resolve_to_their_role_and_tenant() -> None:
    assert authenticate(state(), "Bearer root", at(0)) == Principal("adm", "admin", None)
    assert authenticate(state(), f"bearer {TENANT_TOKEN}", at(0)) == Principal(
        "tok1", "tenant", "t1"
    )


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic cm9vdA==",
        "root",
        "Bearer nope",
        f"Bearer {TENANT_TOKEN}x",
    ],
)
def test_missing_malformed_and_unknown_tokens_are_401(header: str | None) -> None:
    with pytest.raises(Problem) as caught:
        authenticate(state(), header, at(0))
    assert caught.value.status == 401
    assert caught.value.headers["WWW-Authenticate"].startswith("Bearer")


def test_expired_and_revoked_tokens_are_401() -> None:
    assert authenticate(state(), f"Bearer {SHORT_TOKEN}", at(59)).token_id == "tok2"
    with pytest.raises(Problem):
        authenticate(state(), f"Bearer {SHORT_TOKEN}", at(60))
    revoked = fold(envelope(api.TokenRevoked(), "tok1", tenant="t1"), state=state())
    with pytest.raises(Problem):
        authenticate(revoked, f"Bearer {TENANT_TOKEN}", at(0))


def test_tenants_see_only_their_own_and_admins_see_all() -> None:
    alice = Principal("a", "tenant", "t1")
    assert alice.sees("t1")
    assert not alice.sees("t2")
    assert Principal("r", "admin", None).sees("t2")
    assert alice.scope == "tenant:t1"
    with pytest.raises(Problem) as caught:
        alice.require_admin()
    assert caught.value.status == 403
