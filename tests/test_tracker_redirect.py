"""The /c/{code} hop: a 302 to exactly the stored target plus a click id; 404s; bounds; no open redirect.

The first test runs the production click writer (a process); the others a thread writer, since the hop is the
same and the writer process has its own tests in test_tracker_clicks.py."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drainage.tracker.clickids import LENGTH
from tests.tracker_helpers import add_link, clicks, load, run, running


def _split_click(location: str, param: str = "dr_click") -> tuple[str, str]:
    """(location without the click id, click id)."""
    rest, hash_mark, fragment = location.partition("#")
    head, _, click = rest.rpartition(f"{param}=")
    assert head[-1] in "?&", location
    return head[:-1] + hash_mark + fragment, click


REDIRECTS = [
    ("https://shop.example.com/p/scarf", "https://shop.example.com/p/scarf?dr_click={id}"),
    ("https://shop.example.com/p/scarf?utm_source=x&color=red",
     "https://shop.example.com/p/scarf?utm_source=x&color=red&dr_click={id}"),
    ("https://shop.example.com/p/scarf?utm_source=x#reviews",
     "https://shop.example.com/p/scarf?utm_source=x&dr_click={id}#reviews"),
    ("https://shop.example.com/p/scarf#size-guide", "https://shop.example.com/p/scarf?dr_click={id}#size-guide"),
    ("https://shop.example.com/p/scarf?", "https://shop.example.com/p/scarf?dr_click={id}"),
    ("https://shop.example.com/p/scarf?a=1&", "https://shop.example.com/p/scarf?a=1&dr_click={id}"),
    ("https://shop.example.com", "https://shop.example.com/?dr_click={id}"),
    ("https://shop.example.com/p/schal-grün?farbe=rot", "https://shop.example.com/p/schal-gr%C3%BCn?farbe=rot&dr_click={id}"),
    ("https://shop.example.com/p/a%20b?q=%E2%9C%93", "https://shop.example.com/p/a%20b?q=%E2%9C%93&dr_click={id}"),
    ("https://bücher.example/p/1", "https://xn--bcher-kva.example/p/1?dr_click={id}"),
    ("https://shop.example.com:8443/p?x=1", "https://shop.example.com:8443/p?x=1&dr_click={id}"),
]
"""Stored targets and where the hop sends the visitor ({id}: the click id)."""


def test_redirect_keeps_the_stored_target_and_adds_the_click_id(tmp_path: Path) -> None:
    config = load(tmp_path)  # the production writer (a process): one tracker for every case
    codes = [add_link(config, target, item=str(n)) for n, (target, _) in enumerate(REDIRECTS)]

    async def scenario() -> None:
        async with running(config) as (tracker, client):
            for code, (target, expected) in zip(codes, REDIRECTS, strict=True):
                response = await client.get(f"/c/{code}")
                assert response.status_code == 302, target
                assert response.headers["cache-control"] == "no-store, private"
                location = response.headers["location"]
                _, click_id = _split_click(location)
                assert location == expected.format(id=click_id), target
                assert len(click_id) == LENGTH
            await tracker.recorder.flush()

    run(scenario)
    assert sorted(click.code for click in clicks(config)) == sorted(codes)  # one click each


def test_each_click_gets_its_own_id_and_head_is_answered_without_counting_a_person(tmp_path: Path) -> None:
    config = load(tmp_path, writer="thread")
    code = add_link(config, "https://shop.example.com/p/scarf")

    async def scenario() -> list[str]:
        async with running(config) as (tracker, client):
            ids = [_split_click((await client.get(f"/c/{code}")).headers["location"])[1] for _ in range(3)]
            head = await client.head(f"/c/{code}")
            assert head.status_code == 302 and head.content == b""
            ids.append(_split_click(head.headers["location"])[1])
            await tracker.recorder.flush()
            return ids

    ids = run(scenario)
    assert len(set(ids)) == 4
    rows = clicks(config)
    assert [r.click_id for r in rows] == ids
    assert [r.agent_class for r in rows] == ["bot", "bot", "bot", "bot"]  # httpx's agent is a bot
    assert sum(r.agent_class == "human" for r in rows) == 0


UNKNOWN_PATHS = [
    "/c/zzzzzzzzzzzz", "/c/", "/c/ABCDEFGHIJKL", "/c/short", "/c/aaaaaaaaaaaaa", "/c/aaaaaaaaaaa1",
    "/c/%3Cscript%3Ealert(1)%3C%2Fscript%3E", "/c/../../etc/passwd", "/c/aaaaaaaaaaaa/extra",
]


def test_unknown_or_malformed_codes_get_a_404_page_that_leads_home_and_echoes_nothing(tmp_path: Path) -> None:
    config = load(tmp_path, writer="thread")
    add_link(config, "https://shop.example.com/p/scarf")

    async def scenario() -> None:
        async with running(config) as (tracker, client):
            for path in UNKNOWN_PATHS:
                response = await client.get(path)
                assert response.status_code == 404, path
                assert "location" not in response.headers
                body = response.text
                assert 'href="https://shop.example.com"' in body
                assert "Northwind &lt;Knits&gt;" in body  # the store name is escaped, never raw
                assert "script" not in body and "passwd" not in body and "aaaa" not in body, path
                head = await client.head(path)
                assert head.status_code == 404 and head.content == b"", path
            await tracker.recorder.flush()

    run(scenario)
    assert clicks(config) == []


def test_methods_and_size_bounds(tmp_path: Path) -> None:
    config = load(tmp_path, writer="thread")
    code = add_link(config, "https://shop.example.com/p/scarf")

    async def scenario() -> None:
        async with running(config) as (_tracker, client):
            post = await client.post(f"/c/{code}")
            assert post.status_code == 405 and post.headers["allow"] == "GET, HEAD"
            long_query = await client.get(f"/c/{code}", params={"x": "a" * 3000})
            assert long_query.status_code == 414
            big_headers = await client.get(f"/c/{code}", headers={f"x-h{i}": "v" * 500 for i in range(20)})
            assert big_headers.status_code == 431
            injected = await client.get(f"/c/{code}", params={"dr_click": "x\r\nSet-Cookie: a=b"})
            assert injected.status_code == 302 and "set-cookie" not in injected.headers
            assert "Set-Cookie" not in injected.headers["location"]

    run(scenario)


OPEN_REDIRECT_PAYLOADS = [
    "/c/{code}?url=https://evil.example.org", "/c/{code}?next=//evil.example.org", "/c/{code}?redirect=evil.org",
    "/c/{code}?return_to=https%3A%2F%2Fevil.org", "/c/{code}?to=javascript:alert(1)", "/c/{code}?target=evil.org",
    "/c/{code}?dr_click=https://evil.org", "/c/{code}?dr_click=%0d%0aLocation:%20https://evil.org",
    "/c/{code}/https://evil.org", "/c/{code}//evil.org", "/c/{code}/..;/evil.org", "/c/{code}@evil.org",
    "/c/{code}%2F%2Fevil.org", "/c/{code}%00https://evil.org", "/c/{code}%0d%0aLocation:https://evil.org",
    "/c//evil.org", "/c///evil.org/%2e%2e", "/c/https:evil.org", "/c/%2F%2Fevil.org", "/c/%5C%5Cevil.org",
    "/c/\\\\evil.org", "/c/https://evil.org", "/c/http:%2F%2Fevil.org", "/c/javascript:alert(1)",
    "/c/data:text/html,<script>", "/c/{code}?%0d%0aLocation=evil", "/c/{code}#https://evil.org",
    "/c/{code}?q=1&url=//evil.org&next=/\\evil.org", "/c/{code}?utm_source=x&redirect_uri=https://evil.org",
    "/c/{code}?;url=evil.org", "/c/.evil.org", "/c/{code}.evil.org", "/c/{code}?@evil.org",
]


def test_no_request_can_choose_where_the_visitor_goes(tmp_path: Path) -> None:
    assert len(OPEN_REDIRECT_PAYLOADS) >= 30
    config = load(tmp_path, writer="thread")
    target = "https://shop.example.com/p/scarf?utm_source=social"
    code = add_link(config, target)
    evil_headers = [{}, {"host": "evil.org"}, {"x-forwarded-host": "evil.org"}, {"x-forwarded-proto": "javascript"},
                    {"referer": "https://evil.org/"}, {"x-original-url": "//evil.org"}]

    async def scenario() -> None:
        async with running(config) as (_tracker, client):
            for payload in OPEN_REDIRECT_PAYLOADS:
                for headers in evil_headers:
                    response = await client.get(payload.format(code=code), headers=headers)
                    if response.status_code == 302:
                        stored, _ = _split_click(response.headers["location"])
                        assert stored == target, (payload, headers)
                    else:
                        assert response.status_code == 404, (payload, response.status_code)
                        assert "location" not in response.headers
                    assert "evil" not in response.text

    run(scenario)


@pytest.mark.slow  # 150 examples; the cases above keep the hop in the quick loop
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(suffix=st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40),
       query=st.lists(st.tuples(st.text(max_size=12), st.text(max_size=20)), max_size=4))
def test_any_path_or_query_ends_at_the_stored_target_or_a_404(tmp_path: Path, suffix: str,
                                                              query: list[tuple[str, str]]) -> None:
    # The writer thread: this property is about where a request leads, and 150 examples must not start 150
    # writer processes (the writer process has tests of its own).
    config = load(tmp_path, writer="thread")
    target = "https://shop.example.com/p/scarf?color=red#top"
    code = add_link(config, target)

    async def scenario() -> None:
        async with running(config) as (_tracker, client):
            for path in (f"/c/{code}", f"/c/{code}{suffix}", f"/c/{suffix}"):
                try:
                    response = await client.get(path, params=query)
                except Exception:  # a path httpx itself refuses to send is not a request at all
                    continue
                if response.status_code == 302:
                    location = response.headers["location"]
                    assert urlsplit(location).hostname == "shop.example.com"
                    stored, click_id = _split_click(location)
                    assert stored == target
                    assert dict(parse_qsl(urlsplit(location).query))["dr_click"] == click_id
                else:
                    assert response.status_code in (404, 414), response.status_code

    run(scenario)
