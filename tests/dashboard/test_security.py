"""What keeps the dashboard safe to expose: escaping, CSRF, credentials, roles, binding."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from dashboard_support import (  # noqa: F401 - fixtures
    BASE,
    XSS_ARG,
    XSS_ERROR,
    World,
    act,
    client_fixture,
    client_for,
    token_from,
    world_fixture,
)

import quebec
from quebec.dashboard.security import Access, Role, Visitor, same_origin
from quebec.types import JobState


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_script_in_an_argument_and_an_error_renders_inert(world: World, client: Any) -> None:
    for path in ("/jobs/failed", f"/job/{world.failed[0]}"):
        text = client.get(path).text
        assert XSS_ARG not in text and XSS_ERROR not in text and "<script>alert" not in text
        assert "&lt;script&gt;alert(" in text
        # the only scripts are our own file
        assert text.count("<script") == 1 and 'src="/static/htmx.min.js"' in text


def test_a_cross_site_post_is_refused_and_changes_nothing(world: World, client: Any) -> None:
    token = token_from(client, "/jobs/failed")
    for headers in (
        {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
        {"Sec-Fetch-Site": "same-site", "Origin": BASE},
        {"Origin": "https://evil.example"},
        {},  # neither header: not known to be ours
    ):
        response = client.post("/failed/retry", data={"csrf": token, "id": world.failed[0]}, headers=headers)
        assert response.status_code == 403 and "cross-site" in response.text, headers
    assert world.qc.get_job(world.failed[0]).state is JobState.FAILED


def test_a_post_without_or_with_a_forged_token_is_refused(world: World, client: Any) -> None:
    headers = {"Origin": BASE, "Sec-Fetch-Site": "same-origin"}
    for data in ({"id": world.failed[0]}, {"id": world.failed[0], "csrf": "1700000000.deadbeef"}):
        response = client.post("/failed/retry", data=data, headers=headers)
        assert response.status_code == 403 and "token" in response.text
    other = quebec.ControlPlaneASGI(world.qc, secret="another-secret-of-16+")
    with client_for(other) as elsewhere:
        foreign = token_from(elsewhere, "/jobs/failed")
    response = client.post("/failed/retry", data={"id": world.failed[0], "csrf": foreign}, headers=headers)
    assert response.status_code == 403
    assert world.qc.get_job(world.failed[0]).state is JobState.FAILED


def test_tokens_expire_and_are_bound_to_the_user() -> None:
    access = Access.from_env({}, secret="s" * 32)
    alice, bob = Visitor(Role.OPERATOR, "alice"), Visitor(Role.OPERATOR, "bob")
    token = access.csrf_token(alice, now=1_000_000)
    assert access.csrf_valid(token, alice, now=1_000_100)
    assert not access.csrf_valid(token, bob, now=1_000_100)
    assert not access.csrf_valid(token, alice, now=1_000_000 + 13 * 3600)


def test_same_origin_reads_fetch_metadata_first() -> None:
    assert same_origin({"sec-fetch-site": "same-origin", "origin": "https://evil.example"})
    assert not same_origin({"sec-fetch-site": "none"})
    assert same_origin({"origin": "http://h:1", "host": "h:1"})
    assert not same_origin({"origin": "http://h:1.evil", "host": "h:1"})


def test_binding_beyond_loopback_without_credentials_refuses_in_one_sentence(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("USER", "PASSWORD", "TOKEN", "VIEWER_USER", "VIEWER_PASSWORD"):
        monkeypatch.delenv(f"QUEBEC_CONTROL_PLANE_{name}", raising=False)
    with pytest.raises(quebec.ConfigError) as refused:
        world.qc.start_control_plane("0.0.0.0:0")
    sentence = str(refused.value)
    assert sentence.startswith("refusing to serve the dashboard on 0.0.0.0 without credentials")
    assert "QUEBEC_CONTROL_PLANE_USER" in sentence and "\n" not in sentence


def test_with_credentials_it_serves_beyond_loopback(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUEBEC_CONTROL_PLANE_USER", "ops")
    monkeypatch.setenv("QUEBEC_CONTROL_PLANE_PASSWORD", "hunter22")
    server = world.qc.start_control_plane("0.0.0.0:0")
    try:
        import httpx

        url = f"http://127.0.0.1:{server.port}"
        assert httpx.get(url + "/health").status_code == 401
        assert httpx.get(url + "/health", headers=basic("ops", "hunter22")).status_code == 200
        assert httpx.get(url + "/health", headers=basic("ops", "wrong")).status_code == 401
    finally:
        world.qc.stop_control_plane()


def test_a_bad_address_or_a_busy_port_is_one_sentence(world: World) -> None:
    with pytest.raises(quebec.ConfigError, match="must be host:port"):
        world.qc.start_control_plane("5006")
    server = world.qc.start_control_plane("127.0.0.1:0")
    try:
        other = quebec.Quebec(world.qc.db.url, table_name_prefix=world.qc.db.tables.prefix)
        try:
            with pytest.raises(quebec.ConfigError, match=f"cannot serve the dashboard on 127.0.0.1:{server.port}"):
                other.start_control_plane(f"127.0.0.1:{server.port}")
        finally:
            other.close()
    finally:
        world.qc.stop_control_plane()


def test_a_viewer_sees_but_cannot_act(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUEBEC_CONTROL_PLANE_USER", "ops")
    monkeypatch.setenv("QUEBEC_CONTROL_PLANE_PASSWORD", "op-pass")
    monkeypatch.setenv("QUEBEC_CONTROL_PLANE_VIEWER_USER", "view")
    monkeypatch.setenv("QUEBEC_CONTROL_PLANE_VIEWER_PASSWORD", "view-pass")
    app = world.qc.asgi_app()
    with client_for(app, host="10.1.2.3") as c:
        assert c.get("/jobs/failed").status_code == 401
        page = c.get("/jobs/failed", headers=basic("view", "view-pass"))
        assert page.status_code == 200 and ">Retry<" not in page.text and "viewer" in page.text
        token = app.access.csrf_token(Visitor(Role.VIEWER, "view"))  # even with a valid token
        refused = act(c, "/failed/retry", {"id": world.failed[0]}, token=token, headers=basic("view", "view-pass"))
        assert refused.status_code == 403 and "may only view" in refused.text
        assert world.qc.get_job(world.failed[0]).state is JobState.FAILED
        done = act(c, "/failed/retry", {"id": world.failed[0]}, headers=basic("ops", "op-pass"))
        assert done.status_code == 303 and world.qc.get_job(world.failed[0]).state is JobState.READY


def test_read_only_switch_makes_everyone_a_viewer(world: World) -> None:
    app = world.qc.asgi_app(read_only=True)
    with client_for(app) as c:
        assert "read-only" in c.get("/").text
        token = app.access.csrf_token(Visitor(Role.VIEWER, ""))
        refused = act(c, "/queues/pause", {"queue": "default"}, token=token)
        assert refused.status_code == 403 and "read-only" in refused.text
    assert not world.qc.queue_paused("default")


def test_without_credentials_only_loopback_is_served(world: World) -> None:
    with client_for(world.qc.asgi_app(), host="192.0.2.7") as c:
        response = c.get("/")
        assert response.status_code == 403 and "only requests from this machine" in response.text


def test_a_user_auth_callable_decides_the_role(world: World) -> None:
    def auth(request: Any) -> str | None:
        return {"op": "operator", "v": "viewer"}.get(request.headers.get("x-user", ""))

    app = world.qc.asgi_app(auth=auth)
    with client_for(app, host="192.0.2.7") as c:
        assert c.get("/").status_code == 401
        assert c.get("/", headers={"x-user": "v"}).status_code == 200
        token = app.access.csrf_token(Visitor(Role.VIEWER, "auth"))
        refused = act(c, "/queues/pause", {"queue": "default"}, token=token, headers={"x-user": "v"})
        assert refused.status_code == 403
        done = act(c, "/queues/pause", {"queue": "default"}, headers={"x-user": "op"})
        assert done.status_code == 303 and world.qc.queue_paused("default")


def test_mounted_under_a_prefix_links_and_redirects_keep_it(world: World) -> None:
    from starlette.applications import Starlette
    from starlette.routing import Mount

    host = Starlette(routes=[Mount("/ops/quebec", app=world.qc.asgi_app())])
    with client_for(host) as c:
        text = c.get("/ops/quebec/jobs/failed").text
        assert 'href="/ops/quebec/queues"' in text and 'action="/ops/quebec/failed/retry"' in text
        assert 'src="/ops/quebec/static/htmx.min.js"' in text
        assert c.get("/ops/quebec/static/htmx.min.js").status_code == 200
        done = act(
            c,
            "/ops/quebec/failed/retry",
            {"id": world.failed[0], "back": "/ops/quebec/jobs/failed"},
            page="/ops/quebec/jobs/failed",
        )
        assert done.headers["location"].startswith("/ops/quebec/jobs/failed?done=retried")


def test_half_a_credential_pair_is_refused_in_one_sentence() -> None:
    with pytest.raises(quebec.ConfigError, match="QUEBEC_CONTROL_PLANE_PASSWORD too"):
        Access.from_env({"QUEBEC_CONTROL_PLANE_USER": "ops"})
