"""The page's security headers: a policy that runs the built front end and nothing else, and
no framing."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest

from stockapp.web.static import STYLE_HASHES, content_security_policy, page_headers
from tests.helpers import REPO


def directives(policy: str) -> dict[str, str]:
    return dict(d.strip().split(" ", 1) for d in policy.split(";"))


def test_the_page_may_not_be_framed_and_runs_only_its_own_scripts():
    headers = page_headers("127.0.0.1:6066")
    assert headers["X-Frame-Options"] == "DENY"
    policy = directives(headers["Content-Security-Policy"])
    assert policy["default-src"] == "'self'"
    assert policy["script-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert policy["object-src"] == "'none'"
    assert policy["connect-src"] == "'self' ws://127.0.0.1:6066 wss://127.0.0.1:6066"


@pytest.mark.parametrize(
    "host", ["evil; script-src *", "a b", "x\r\ny", "", None, "[::1]:6066\u00e9"]
)
def test_a_strange_host_adds_nothing_to_the_policy(host):
    policy = directives(content_security_policy(host))
    assert policy["connect-src"] == "'self'"
    assert policy["script-src"] == "'self'"


def test_ipv6_hosts_are_named_in_connect_src():
    policy = directives(content_security_policy("[::1]:6066"))
    assert policy["connect-src"] == "'self' ws://[::1]:6066 wss://[::1]:6066"


def test_the_built_bundle_makes_only_the_style_elements_the_policy_allows():
    bundles = list((REPO / "frontend" / "dist" / "assets").glob("*.js"))
    if not bundles:
        pytest.skip("the front end is not built (make install builds it)")
    texts = []
    for bundle in bundles:
        code = bundle.read_text()
        for at in [m.start() for m in re.finditer(r'createElement\("style"\)', code)]:
            found = re.search(r'innerText="([^"]*)"', code[at : at + 400])
            assert found, "a style element whose text this test cannot find"
            texts.append(found.group(1))
    hashes = {
        "'sha256-" + base64.b64encode(hashlib.sha256(t.encode()).digest()).decode() + "'"
        for t in texts
    }
    assert hashes <= set(STYLE_HASHES), "update STYLE_HASHES in stockapp/web/static.py"
