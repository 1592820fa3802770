"""The loopback OpenID Connect provider (tests/oidc_provider.py), spoken to over real HTTP: the
code flow as Authlib's own client runs it (the library Streamlit's st.login uses), and every
refusal the provider owes a wrong client, secret, redirect URI, code, verifier or password."""

from __future__ import annotations

import base64
import http.client
import json
import time
import tomllib
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import OAuth2Client
from authlib.oidc.core import CodeIDToken
from hypothesis import given, settings
from hypothesis import strategies as st
from joserfc import jwt
from joserfc.jwk import KeySet
from oidc_provider import ERROR_ID, FORM_ID, OIDCProvider, oidc_provider, s256

USERS = {"alice@example.com": "pw-a", "bob@example.com": "pw-b"}
REDIRECT = "http://127.0.0.1:9/oauth2callback"  # never contacted: the tests read Location headers
CLIENT, SECRET = "test-app", "s3cret-value"


@pytest.fixture(scope="module")
def provider():
    with oidc_provider(USERS, client_id=CLIENT, client_secret=SECRET, redirect_uris=[REDIRECT]) as p:
        yield p


def request(url, *, method="GET", form=None, headers=None):
    """One HTTP exchange, redirects not followed: (status, headers, body text)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    body = urlencode(form) if form is not None else None
    hdrs = dict(headers or {})
    if form is not None:
        hdrs["Content-Type"] = "application/x-www-form-urlencoded"
    conn.request(method, parts.path + (f"?{parts.query}" if parts.query else ""), body=body, headers=hdrs)
    resp = conn.getresponse()
    out = resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read().decode()
    conn.close()
    return out


class _Form(HTMLParser):
    """The named inputs of the provider's sign-in form, as a browser would submit them."""

    def __init__(self):
        super().__init__()
        self.fields, self.action, self._inside = {}, None, False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and a.get("id") == FORM_ID:
            self._inside, self.action = True, a.get("action")
        elif tag == "input" and self._inside and a.get("name"):
            self.fields[a["name"]] = a.get("value") or ""

    def handle_endtag(self, tag):
        if tag == "form":
            self._inside = False


def auth_params(**overrides):
    verifier = generate_token(48)
    params = {
        "response_type": "code",
        "client_id": CLIENT,
        "redirect_uri": REDIRECT,
        "scope": "openid email profile",
        "state": "state-1",
        "nonce": "nonce-1",
        "code_challenge": s256(verifier),
        "code_challenge_method": "S256",
    }
    params.update(overrides)
    return {k: v for k, v in params.items() if v is not None}, verifier


def submit_login(provider, authorize_url, user, password):
    """GET the authorization page, fill its form as a browser would, POST it."""
    status, _, page = request(authorize_url)
    assert status == 200, page
    form = _Form()
    form.feed(page)
    assert form.action == "/authorize"
    fields = {**form.fields, "username": user, "password": password}
    return request(provider.issuer + form.action, method="POST", form=fields)


def get_code(provider, **overrides):
    params, verifier = auth_params(**overrides)
    url = f"{provider.issuer}/authorize?{urlencode(params)}"
    status, headers, body = submit_login(provider, url, "alice@example.com", "pw-a")
    assert status == 302, body
    query = parse_qs(urlsplit(headers["location"]).query)
    assert query["state"] == [params.get("state")]
    return query["code"][0], verifier


def token_request(provider, form, *, basic=(CLIENT, SECRET)):
    headers = {}
    if basic is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{basic[0]}:{basic[1]}".encode()).decode()
    status, _, body = request(f"{provider.issuer}/token", method="POST", form=form, headers=headers)
    return status, json.loads(body)


def code_form(code, verifier, **overrides):
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
    }
    form.update(overrides)
    return {k: v for k, v in form.items() if v is not None}


# -- discovery and the whole flow ---------------------------------------------------------------


def test_discovery_names_endpoints_on_the_issuer_and_they_answer(provider):
    status, _, body = request(provider.metadata_url)
    meta = json.loads(body)
    assert status == 200 and meta["issuer"] == provider.issuer
    assert provider.metadata_url == f"{provider.issuer}/.well-known/openid-configuration"
    assert provider.issuer.startswith("http://127.0.0.1:")
    for key in ("authorization_endpoint", "token_endpoint", "jwks_uri", "userinfo_endpoint"):
        assert meta[key].startswith(provider.issuer + "/")
    assert meta["code_challenge_methods_supported"] == ["S256"]  # makes Streamlit send PKCE
    assert set(meta["token_endpoint_auth_methods_supported"]) == {"client_secret_basic", "client_secret_post"}
    status, _, body = request(meta["jwks_uri"])
    (key,) = json.loads(body)["keys"]
    assert status == 200 and key["kty"] == "RSA" and key["kid"] and "d" not in key  # public only


@pytest.mark.parametrize("auth_method", ["client_secret_basic", "client_secret_post"])
def test_authlib_client_completes_the_code_flow_and_validates_the_id_token(provider, auth_method):
    meta = json.loads(request(provider.metadata_url)[2])
    client = OAuth2Client(
        CLIENT,
        SECRET,
        scope="openid email profile",
        redirect_uri=REDIRECT,
        code_challenge_method="S256",
        token_endpoint_auth_method=auth_method,
    )
    verifier, nonce = generate_token(48), generate_token(20)
    url, state = client.create_authorization_url(
        meta["authorization_endpoint"], nonce=nonce, code_verifier=verifier
    )
    status, headers, _ = submit_login(provider, url, "bob@example.com", "pw-b")
    assert status == 302 and headers["location"].startswith(REDIRECT + "?")
    before = len(provider.events_of("token"))
    token = client.fetch_token(
        meta["token_endpoint"], authorization_response=headers["location"], code_verifier=verifier
    )
    client.close()
    assert token["token_type"] == "Bearer" and token["access_token"]
    event = provider.events_of("token")[before]
    assert event == {"event": "token", "user": "bob@example.com", "auth_method": auth_method, "pkce": True}

    keys = KeySet.import_key_set(json.loads(request(meta["jwks_uri"])[2]))
    decoded = jwt.decode(token["id_token"], keys, algorithms=["RS256"])
    assert decoded.header["alg"] == "RS256" and decoded.header["kid"] == provider.key.kid
    claims = CodeIDToken(
        decoded.claims,
        decoded.header,
        {"iss": {"values": [provider.issuer]}},
        {"nonce": nonce, "client_id": CLIENT, "access_token": token["access_token"]},
    )
    claims.validate()  # iss, aud, exp, iat, nonce and at_hash, as Streamlit's Authlib checks them
    assert claims["aud"] == CLIENT and claims["nonce"] == nonce
    assert claims["email"] == "bob@example.com" and claims["email_verified"] is True
    assert claims["name"] == "Bob" and claims["sub"] == provider.subject("bob@example.com")
    assert claims["iat"] <= time.time() < claims["exp"]

    status, _, body = request(
        meta["userinfo_endpoint"], headers={"Authorization": f"Bearer {token['access_token']}"}
    )
    assert status == 200
    assert json.loads(body) == {
        "sub": claims["sub"],
        "email": "bob@example.com",
        "email_verified": True,
        "name": "Bob",
    }


def test_scope_decides_the_claims(provider):
    code, verifier = get_code(provider, scope="openid")
    status, body = token_request(provider, code_form(code, verifier))
    claims = jwt.decode(body["id_token"], provider.key).claims
    assert status == 200 and "email" not in claims and "name" not in claims
    assert claims["sub"] == provider.subject("alice@example.com")


# -- the authorization endpoint -----------------------------------------------------------------


def test_wrong_password_or_unknown_user_stays_on_the_form_with_an_error(provider):
    params, _ = auth_params(state="s-wrong")
    url = f"{provider.issuer}/authorize?{urlencode(params)}"
    for user, password in [
        ("alice@example.com", "pw-b"),
        ("mallory@example.com", "pw-a"),
        ("alice@example.com", ""),
    ]:
        status, headers, page = submit_login(provider, url, user, password)
        assert status == 200 and "location" not in headers
        assert f'id="{ERROR_ID}"' in page and "Wrong e-mail or password." in page
        assert FORM_ID in page and 'value="s-wrong"' in page  # the request goes on with the form
    assert provider.events_of("login_failed")[-1] == {"event": "login_failed", "user": "alice@example.com"}


@pytest.mark.parametrize(
    "overrides",
    [{"client_id": "someone-else"}, {"redirect_uri": "http://127.0.0.1:9/elsewhere"}, {"redirect_uri": None}],
)
def test_unknown_client_or_unregistered_redirect_uri_is_refused_without_a_redirect(provider, overrides):
    params, _ = auth_params(**overrides)
    for method, form in [
        ("GET", None),
        ("POST", {**params, "username": "alice@example.com", "password": "pw-a"}),
    ]:
        url = f"{provider.issuer}/authorize" + (f"?{urlencode(params)}" if method == "GET" else "")
        status, headers, page = request(url, method=method, form=form)
        assert status == 400 and "location" not in headers and FORM_ID not in page


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": "email profile"}, "invalid_scope"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge": None}, "invalid_request"),
        ({"prompt": "none"}, "login_required"),
    ],
)
def test_bad_requests_from_a_known_client_go_back_with_an_error_and_the_state(provider, overrides, error):
    params, _ = auth_params(state="s-err", **overrides)
    status, headers, _ = request(f"{provider.issuer}/authorize?{urlencode(params)}")
    assert status == 302
    location = urlsplit(headers["location"])
    query = parse_qs(location.query)
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    assert query["error"] == [error] and query["state"] == ["s-err"] and "code" not in query


def test_request_values_are_escaped_in_the_page(provider):
    params, _ = auth_params(state='"><script>alert(1)</script>')
    _, _, page = request(f"{provider.issuer}/authorize?{urlencode(params)}")
    assert "<script>" not in page and "&lt;script&gt;" in page


# -- the token endpoint -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("basic", "extra"),
    [
        ((CLIENT, "wrong"), {}),
        (("someone-else", SECRET), {}),
        (None, {"client_id": CLIENT, "client_secret": "wrong"}),
        (None, {"client_id": "someone-else", "client_secret": SECRET}),
        (None, {"client_id": CLIENT}),  # no secret at all
    ],
)
def test_unknown_client_or_wrong_secret_gets_invalid_client(provider, basic, extra):
    code, verifier = get_code(provider)
    status, body = token_request(provider, {**code_form(code, verifier), **extra}, basic=basic)
    assert status == 401 and body["error"] == "invalid_client" and "id_token" not in body


def test_two_client_authentication_methods_at_once_are_refused(provider):
    code, verifier = get_code(provider)
    form = {**code_form(code, verifier), "client_id": CLIENT, "client_secret": SECRET}
    status, body = token_request(provider, form)
    assert status == 400 and body["error"] == "invalid_request"


def test_a_code_is_good_once_and_its_replay_revokes_the_tokens(provider):
    code, verifier = get_code(provider)
    status, first = token_request(provider, code_form(code, verifier))
    assert status == 200 and first["id_token"]
    bearer = {"Authorization": f"Bearer {first['access_token']}"}
    assert request(f"{provider.issuer}/userinfo", headers=bearer)[0] == 200
    status, second = token_request(provider, code_form(code, verifier))
    assert (
        status == 400 and second["error"] == "invalid_grant" and "already used" in second["error_description"]
    )
    status, headers, _ = request(f"{provider.issuer}/userinfo", headers=bearer)
    assert status == 401 and headers["www-authenticate"] == 'Bearer error="invalid_token"'


def test_wrong_redirect_uri_is_refused_and_burns_the_code(provider):
    code, verifier = get_code(provider)
    status, body = token_request(provider, code_form(code, verifier, redirect_uri="http://127.0.0.1:9/other"))
    assert status == 400 and body["error"] == "invalid_grant"
    status, body = token_request(provider, code_form(code, verifier, redirect_uri=None))
    assert status == 400 and body["error"] == "invalid_grant"
    status, body = token_request(provider, code_form(code, verifier))  # right, but too late
    assert status == 400 and body["error"] == "invalid_grant"


@pytest.mark.parametrize("verifier", ["wrong-" + "v" * 43, None])
def test_pkce_verifier_must_match_the_challenge(provider, verifier):
    code, _ = get_code(provider)
    status, body = token_request(provider, code_form(code, verifier))
    assert status == 400 and body["error"] == "invalid_grant"


def test_without_a_challenge_no_verifier_is_needed_and_none_is_accepted(provider):
    code, verifier = get_code(provider, code_challenge=None, code_challenge_method=None)
    assert token_request(provider, code_form(code, None))[0] == 200
    code, verifier = get_code(provider, code_challenge=None, code_challenge_method=None)
    status, body = token_request(provider, code_form(code, verifier))
    assert status == 400 and body["error"] == "invalid_grant"


def test_unknown_code_and_wrong_grant_type(provider):
    status, body = token_request(provider, code_form("no-such-code", "v" * 43))
    assert status == 400 and body["error"] == "invalid_grant"
    code, verifier = get_code(provider)
    status, body = token_request(provider, code_form(code, verifier, grant_type="password"))
    assert status == 400 and body["error"] == "unsupported_grant_type"


def test_an_expired_code_is_refused():
    p = OIDCProvider(USERS, client_id=CLIENT, client_secret=SECRET, redirect_uris=[REDIRECT], code_ttl_s=0.2)
    p.start()
    try:
        code, verifier = get_code(p)
        time.sleep(0.4)
        status, body = token_request(p, code_form(code, verifier))
        assert status == 400 and body["error"] == "invalid_grant" and "expired" in body["error_description"]
    finally:
        p.stop()


def test_s256_matches_rfc7636_appendix_b():
    assert (
        s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    )


_SECRET_TEXT = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=40)


@settings(max_examples=60, deadline=None)
@given(secret=_SECRET_TEXT, tweak=st.integers(min_value=0, max_value=39))
def test_basic_credentials_raw_or_form_encoded_are_accepted_and_any_other_secret_is_not(
    provider, secret, tweak
):
    """Authlib sends Basic credentials unencoded; RFC 6749 2.3.1 form-encodes them. Both carry the
    same secret, ':' '%' '+' included; a secret differing in one character is refused."""
    from urllib.parse import quote_plus

    from oidc_provider import OAuthError

    fresh = OIDCProvider.__new__(OIDCProvider)  # the check only: no key, no server
    fresh.client_id, fresh.client_secret = CLIENT, secret
    for text in (f"{CLIENT}:{secret}", f"{quote_plus(CLIENT)}:{quote_plus(secret)}"):
        header = "Basic " + base64.b64encode(text.encode()).decode()
        assert fresh.authenticate_client({}, header) == "client_secret_basic"
    i = tweak % len(secret)
    other = secret[:i] + ("a" if secret[i] != "a" else "b") + secret[i + 1 :]
    for text in (f"{CLIENT}:{other}", f"{quote_plus(CLIENT)}:{quote_plus(other)}"):
        with pytest.raises(OAuthError) as err:
            fresh.authenticate_client({}, "Basic " + base64.b64encode(text.encode()).decode())
        assert err.value.error == "invalid_client"


# -- userinfo, end session, secrets -------------------------------------------------------------


def test_userinfo_refuses_a_missing_or_unknown_token(provider):
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": f"Basic {SECRET}"}):
        status, hdrs, body = request(f"{provider.issuer}/userinfo", headers=headers)
        assert (
            status == 401
            and json.loads(body)["error"] == "invalid_token"
            and "bearer" in hdrs["www-authenticate"].lower()
        )


def test_end_session_redirects_only_to_a_registered_uri_and_checks_the_hint(provider):
    code, verifier = get_code(provider)
    id_token = token_request(provider, code_form(code, verifier))[1]["id_token"]
    q = {"client_id": CLIENT, "post_logout_redirect_uri": REDIRECT, "id_token_hint": id_token}
    status, headers, _ = request(f"{provider.issuer}/logout?{urlencode(q)}")
    assert status == 302 and headers["location"] == REDIRECT
    assert provider.events_of("logout")[-1] == {
        "event": "logout",
        "user": "alice@example.com",
        "client_id": CLIENT,
    }
    status, headers, _ = request(
        f"{provider.issuer}/logout?{urlencode({**q, 'post_logout_redirect_uri': 'http://evil.test/'})}"
    )
    assert status == 400 and "location" not in headers
    forged = id_token[:-4] + ("AAAA" if not id_token.endswith("AAAA") else "BBBB")
    status, headers, _ = request(f"{provider.issuer}/logout?{urlencode({**q, 'id_token_hint': forged})}")
    assert status == 400 and "location" not in headers


def test_secrets_toml_is_the_auth_block_streamlit_reads(provider):
    text = provider.secrets_toml("http://127.0.0.1:8765/oauth2callback", "c" * 32)
    assert text.startswith("[auth]\n")
    assert tomllib.loads(text) == {
        "auth": {
            "redirect_uri": "http://127.0.0.1:8765/oauth2callback",
            "cookie_secret": "c" * 32,
            "client_id": CLIENT,
            "client_secret": SECRET,
            "server_metadata_url": provider.metadata_url,
        }
    }


@settings(max_examples=60, deadline=None)
@given(redirect_uri=st.text(max_size=60), cookie_secret=st.text(max_size=60))
def test_secrets_toml_round_trips_any_text(provider, redirect_uri, cookie_secret):
    """Quotes, backslashes, newlines, control and non-ASCII characters survive tomllib (the parser
    Streamlit's secrets use)."""
    auth = tomllib.loads(provider.secrets_toml(redirect_uri, cookie_secret))["auth"]
    assert auth["redirect_uri"] == redirect_uri and auth["cookie_secret"] == cookie_secret


def test_unknown_paths_and_non_form_bodies(provider):
    assert request(f"{provider.issuer}/nope")[0] == 404
    status, _, body = request(
        f"{provider.issuer}/token", method="POST", headers={"Content-Type": "application/json"}
    )
    assert status == 400 and json.loads(body)["error"] == "invalid_request"
