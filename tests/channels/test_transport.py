"""The transport adapter that sends a hard-coded API host's requests elsewhere (tweepy, facebook-sdk)."""

from __future__ import annotations

import pytest
import requests

from drainage.transport import route

pytestmark = pytest.mark.pure  # no database: CI's PostgreSQL pass skips it


def test_routed_requests_reach_the_target_and_skip_the_proxy_chosen_for_the_real_host(fake, monkeypatch) -> None:
    # a proxy that refuses everything: were it used for the rerouted request, the request would fail
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    session = requests.Session()
    route(session, "https://api.twitter.com", fake.base_url, timeout=5)
    response = session.get("https://api.twitter.com/img/routed.png?size=small")
    assert response.status_code == 200 and response.content.startswith(b"\x89PNG")
    (request,) = fake.received("images")
    assert (request.path, request.query) == ("/img/routed.png", {"size": "small"})


def test_other_hosts_are_left_alone(fake) -> None:
    session = requests.Session()
    route(session, "https://api.twitter.com", fake.base_url, timeout=5)
    assert session.get_adapter(fake.base_url + "/img/x.png") is not session.get_adapter("https://api.twitter.com/x")
    assert session.get(fake.base_url + "/img/direct.png").status_code == 200
    assert [r.path for r in fake.received("images")] == ["/img/direct.png"]
