"""A real OpenID Connect provider on loopback, for tests and benchmarks of Streamlit's sign-in.

Streamlit's ``st.login()`` speaks the authorization-code flow to a provider it finds through a
discovery document (``server_metadata_url``). To test that flow end to end without a network,
``oidc_provider(users)`` starts a small provider on 127.0.0.1 in a thread: discovery, an
authorization page with a user-name/password form, a token endpoint (authorization_code grant,
client_secret_basic or client_secret_post, PKCE S256), JWKS, userinfo and an end-session
endpoint. ID tokens are RS256-signed with joserfc (the JOSE library Authlib 1.9 itself uses;
``authlib.jose`` is deprecated there). The provider keeps no browser session: every
authorization asks for the password again, so signing in as another user needs no provider
sign-out.

``sign_in``/``sign_out`` are the browser steps (Playwright page), so a test of any Streamlit
app with a "Sign in" button calling ``st.login()`` can reuse them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import secrets
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote_plus, urlencode, urlsplit

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey

FORM_ID = "oidc-test-signin"  # the provider's sign-in form, for browser steps
ERROR_ID = "oidc-test-error"  # the element that says why a sign-in was refused
_MAX_BODY = 64 * 1024


class OAuthError(Exception):
    """A refusal the protocol defines (RFC 6749 section 5.2 / 4.1.2.1): ``error`` is its code."""

    def __init__(self, error: str, description: str, status: int = 400):
        super().__init__(f"{error}: {description}")
        self.error, self.description, self.status = error, description, status


class SignInFailed(AssertionError):
    """The provider refused the user name or password; the message is the provider's."""


@dataclass(frozen=True)
class _Grant:
    """An issued authorization code: what the token request must match."""

    client_id: str
    redirect_uri: str
    user: str
    scope: str
    nonce: str | None
    code_challenge: str | None
    expires: float
    auth_time: int


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def s256(verifier: str) -> str:
    """The PKCE S256 code challenge of a code verifier (RFC 7636 section 4.2)."""
    return _b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def _toml_string(value: str) -> str:
    """A TOML basic string: quote and backslash escaped, control characters (DEL included) as
    \\uXXXX; everything else, non-ASCII too, as is (TOML has no surrogate-pair escapes)."""
    out = []
    for ch in value:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


class OIDCProvider:
    """An OpenID Connect provider for one confidential client, served on ``host``.

    ``users`` maps e-mail to password; each user's ``name`` is the e-mail's local part, title-
    cased, and ``sub`` a stable hash of the e-mail. ``events`` records what happened (sign-ins,
    refusals, token grants with the client-auth method and whether PKCE was used, logouts), so
    tests can check what the relying party actually did."""

    def __init__(
        self,
        users: Mapping[str, str],
        *,
        client_id: str = "embex-test-client",
        client_secret: str | None = None,
        redirect_uris: tuple[str, ...] | list[str] = (),
        host: str = "127.0.0.1",
        port: int = 0,
        code_ttl_s: float = 60.0,
        token_ttl_s: int = 3600,
    ):
        self.users = dict(users)
        self.client_id = client_id
        self.client_secret = client_secret or secrets.token_urlsafe(24)
        self.redirect_uris = tuple(redirect_uris)
        self.code_ttl_s, self.token_ttl_s = code_ttl_s, token_ttl_s
        self.key = RSAKey.generate_key(2048, parameters={"use": "sig", "alg": "RS256"}, auto_kid=True)
        self.events: list[dict] = []
        self._codes: dict[str, _Grant | None] = {}  # None: used (a second use is refused)
        self._tokens: dict[str, tuple[str, str, float, str]] = {}  # token: user, scope, expiry, code
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, port), _handler_for(self))
        self._server.daemon_threads = True
        self.issuer = f"http://{host}:{self._server.server_address[1]}"
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def metadata_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    def start(self) -> OIDCProvider:
        self._thread = threading.Thread(target=self._server.serve_forever, name="oidc-provider", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        self._server.server_close()

    def secrets_toml(self, redirect_uri: str, cookie_secret: str) -> str:
        """The ``[auth]`` block of Streamlit's ``.streamlit/secrets.toml`` for this provider."""
        keys = {
            "redirect_uri": redirect_uri,
            "cookie_secret": cookie_secret,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "server_metadata_url": self.metadata_url,
        }
        return "[auth]\n" + "".join(f"{k} = {_toml_string(v)}\n" for k, v in keys.items())

    def record(self, event: dict) -> None:
        with self._lock:
            self.events.append(event)

    def events_of(self, kind: str) -> list[dict]:
        with self._lock:
            return [e for e in self.events if e["event"] == kind]

    # -- protocol -----------------------------------------------------------------------------

    def metadata(self) -> dict:
        i = self.issuer
        return {
            "issuer": i,
            "authorization_endpoint": f"{i}/authorize",
            "token_endpoint": f"{i}/token",
            "jwks_uri": f"{i}/jwks",
            "userinfo_endpoint": f"{i}/userinfo",
            "end_session_endpoint": f"{i}/logout",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": [
                "iss",
                "sub",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "nonce",
                "at_hash",
                "email",
                "email_verified",
                "name",
            ],
        }

    def jwks(self) -> dict:
        return {"keys": [self.key.as_dict(private=False)]}

    def subject(self, email: str) -> str:
        return "user-" + hashlib.sha256(email.encode()).hexdigest()[:16]

    def claims(self, email: str, scope: str) -> dict:
        """The user's claims that ``scope`` grants (OIDC Core 5.4): sub always, email and name
        with the ``email`` and ``profile`` scopes."""
        scopes = scope.split()
        out: dict = {"sub": self.subject(email)}
        if "email" in scopes:
            out |= {"email": email, "email_verified": True}
        if "profile" in scopes:
            out["name"] = email.split("@", 1)[0].title()
        return out

    def check_authorization(self, params: Mapping[str, str]) -> str:
        """Check an authorization request. Raises ``OAuthError`` with ``status`` 400 where the
        client or redirect URI is wrong (those are never redirected to, RFC 6749 4.1.2.1), and
        status 302 where the error goes back to the client; returns the redirect URI."""
        if params.get("client_id") != self.client_id:
            raise OAuthError("invalid_client", "unknown client_id")
        redirect_uri = params.get("redirect_uri", "")
        if redirect_uri not in self.redirect_uris:
            raise OAuthError("invalid_request", "redirect_uri is not registered for this client")
        if params.get("response_type") != "code":
            raise OAuthError("unsupported_response_type", "only response_type=code", 302)
        if "openid" not in params.get("scope", "").split():
            raise OAuthError("invalid_scope", "the scope must include openid", 302)
        challenge, method = params.get("code_challenge"), params.get("code_challenge_method")
        if (challenge or method) and (method != "S256" or not challenge):
            raise OAuthError("invalid_request", "PKCE needs code_challenge with method S256", 302)
        if params.get("prompt") == "none":
            raise OAuthError("login_required", "this provider always asks for the password", 302)
        return redirect_uri

    def authenticate_user(self, email: str, password: str) -> bool:
        known = self.users.get(email.strip())
        return known is not None and hmac.compare_digest(known.encode(), password.encode())

    def issue_code(self, params: Mapping[str, str], email: str) -> str:
        code = secrets.token_urlsafe(32)
        grant = _Grant(
            client_id=params["client_id"],
            redirect_uri=params["redirect_uri"],
            user=email,
            scope=params.get("scope", "openid"),
            nonce=params.get("nonce") or None,
            code_challenge=params.get("code_challenge") or None,
            expires=time.time() + self.code_ttl_s,
            auth_time=int(time.time()),
        )
        with self._lock:
            self._codes[code] = grant
            self.events.append({"event": "login", "user": email, "pkce": grant.code_challenge is not None})
        return code

    def authenticate_client(self, form: Mapping[str, str], authorization: str | None) -> str:
        """Client authentication at the token endpoint (RFC 6749 2.3.1): HTTP Basic, or id and
        secret in the body; exactly one method. Returns the method. Basic credentials are taken
        form-decoded (as the RFC says) or as sent (as Authlib's client sends them)."""
        if authorization is not None and authorization.lower().startswith("basic "):
            if "client_secret" in form:
                raise OAuthError("invalid_request", "more than one client authentication method")
            try:
                raw = base64.b64decode(authorization[6:].strip(), validate=True).decode()
            except (ValueError, UnicodeDecodeError):
                raise OAuthError("invalid_client", "malformed Basic credentials", 401) from None
            raw_id, colon, raw_secret = raw.partition(":")
            if not colon:
                raise OAuthError("invalid_client", "malformed Basic credentials", 401)
            pairs = [(raw_id, raw_secret), (unquote_plus(raw_id), unquote_plus(raw_secret))]
            method = "client_secret_basic"
        elif "client_secret" in form:
            pairs, method = [(form.get("client_id", ""), form["client_secret"])], "client_secret_post"
        else:
            raise OAuthError("invalid_client", "no client authentication", 401)
        ok = [
            cid == self.client_id and hmac.compare_digest(secret.encode(), self.client_secret.encode())
            for cid, secret in pairs
        ]
        if not any(ok):
            raise OAuthError("invalid_client", "unknown client or wrong client secret", 401)
        if "client_id" in form and form["client_id"] != self.client_id:
            raise OAuthError("invalid_client", "client_id differs from the authenticated client", 401)
        return method

    def exchange_code(self, form: Mapping[str, str], authorization: str | None) -> dict:
        """The token endpoint's authorization_code grant: the token response, or OAuthError."""
        method = self.authenticate_client(form, authorization)
        if form.get("grant_type") != "authorization_code":
            raise OAuthError("unsupported_grant_type", "only authorization_code")
        code = form.get("code", "")
        with self._lock:
            if code not in self._codes:
                raise OAuthError("invalid_grant", "unknown authorization code")
            grant = self._codes[code]
            self._codes[code] = None  # one presentation only, whatever its outcome
            if grant is None:  # a replay: revoke what the code gave (RFC 6749 4.1.2)
                for token in [t for t, v in self._tokens.items() if v[3] == code]:
                    del self._tokens[token]
                self.events.append({"event": "code_reused"})
                raise OAuthError("invalid_grant", "the authorization code was already used")
        if grant.client_id != self.client_id or time.time() > grant.expires:
            raise OAuthError("invalid_grant", "the authorization code expired or is another client's")
        if form.get("redirect_uri") != grant.redirect_uri:
            raise OAuthError("invalid_grant", "redirect_uri differs from the authorization request")
        verifier = form.get("code_verifier")
        if grant.code_challenge is None and verifier is not None:
            raise OAuthError("invalid_grant", "code_verifier without a code_challenge")
        if grant.code_challenge is not None and (
            verifier is None or not hmac.compare_digest(s256(verifier), grant.code_challenge)
        ):
            raise OAuthError("invalid_grant", "PKCE verification failed")
        access_token = secrets.token_urlsafe(32)
        now = int(time.time())
        with self._lock:
            self._tokens[access_token] = (grant.user, grant.scope, now + self.token_ttl_s, code)
        id_claims = {
            "iss": self.issuer,
            "aud": self.client_id,
            "iat": now,
            "exp": now + self.token_ttl_s,
            "auth_time": grant.auth_time,
            "at_hash": _b64url(hashlib.sha256(access_token.encode()).digest()[:16]),
            **self.claims(grant.user, grant.scope),
        }
        if grant.nonce is not None:
            id_claims["nonce"] = grant.nonce
        header = {"alg": "RS256", "kid": self.key.kid, "typ": "JWT"}
        with self._lock:
            self.events.append(
                {"event": "token", "user": grant.user, "auth_method": method, "pkce": verifier is not None}
            )
        return {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": self.token_ttl_s,
            "scope": grant.scope,
            "id_token": jwt.encode(header, id_claims, self.key),
        }

    def userinfo(self, authorization: str | None) -> dict:
        token = (authorization or "")[7:] if (authorization or "").lower().startswith("bearer ") else ""
        with self._lock:
            found = self._tokens.get(token.strip())
        if found is None or time.time() > found[2]:
            raise OAuthError("invalid_token", "unknown or expired access token", 401)
        return self.claims(found[0], found[1])

    def end_session(self, params: Mapping[str, str]) -> str | None:
        """RP-initiated logout: where to send the browser (a registered URI) or None."""
        target = params.get("post_logout_redirect_uri")
        if target is not None and target not in self.redirect_uris:
            raise OAuthError("invalid_request", "post_logout_redirect_uri is not registered")
        hint_user = None
        if params.get("id_token_hint"):
            try:
                hint = jwt.decode(params["id_token_hint"], self.key).claims
            except (JoseError, ValueError):
                raise OAuthError("invalid_request", "id_token_hint is not one of our ID tokens") from None
            hint_user = hint.get("email") or hint.get("sub")
        with self._lock:
            self.events.append({"event": "logout", "user": hint_user, "client_id": params.get("client_id")})
        if target and params.get("state"):
            target += ("&" if "?" in target else "?") + urlencode({"state": params["state"]})
        return target


def _with_query(uri: str, params: Mapping[str, str]) -> str:
    return uri + ("&" if urlsplit(uri).query else "?") + urlencode({k: v for k, v in params.items() if v})


_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Test OIDC provider: sign in</title></head>
<body><h1>Sign in to the test provider</h1>{error}
<form id="{form_id}" method="post" action="/authorize">{hidden}
<p><label>E-mail <input name="username" type="email" value="{username}" autocomplete="username"></label></p>
<p><label>Password <input name="password" type="password" autocomplete="current-password"></label></p>
<p><button type="submit">Continue</button></p>
</form></body></html>
"""

_AUTH_PARAMS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
)


def _page(params: Mapping[str, str], *, error: str = "", username: str = "") -> str:
    e = html.escape
    hidden = "".join(
        f'<input type="hidden" name="{k}" value="{e(params[k])}">' for k in _AUTH_PARAMS if k in params
    )
    err = f'<p id="{ERROR_ID}" role="alert">{e(error)}</p>' if error else ""
    return _PAGE.format(error=err, form_id=FORM_ID, hidden=hidden, username=e(username))


def _handler_for(provider: OIDCProvider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "TestOIDC/1"

        def log_message(self, format, *args):  # noqa: A002 - quiet: tests read provider.events
            pass

        # -- plumbing --

        def _send(self, status: int, body: str | bytes, ctype: str, headers: Mapping[str, str] | None = None):
            data = body.encode() if isinstance(body, str) else body
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def _json(self, status: int, obj: dict, headers: Mapping[str, str] | None = None):
            self._send(status, json.dumps(obj), "application/json", headers)

        def _redirect(self, location: str):
            self._send(302, b"", "text/plain", {"Location": location})

        def _oauth_error(self, err: OAuthError):
            headers = {"WWW-Authenticate": "Basic"} if err.error == "invalid_client" else {}
            if err.error == "invalid_token":
                headers = {"WWW-Authenticate": f'Bearer error="{err.error}"'}
            self._json(err.status, {"error": err.error, "error_description": err.description}, headers)

        def _params(self, raw: str) -> dict[str, str]:
            parsed = parse_qs(raw, keep_blank_values=True)
            repeated = [k for k, v in parsed.items() if len(v) > 1]
            if repeated:
                raise OAuthError("invalid_request", f"repeated parameter {repeated[0]}")
            return {k: v[0] for k, v in parsed.items()}

        def _form(self) -> dict[str, str]:
            length = int(self.headers.get("Content-Length") or 0)
            if length > _MAX_BODY:
                raise OAuthError("invalid_request", "request body too large")
            ctype = self.headers.get("Content-Type", "").split(";")[0].strip()
            if ctype != "application/x-www-form-urlencoded":
                raise OAuthError("invalid_request", "the body must be application/x-www-form-urlencoded")
            return self._params(self.rfile.read(length).decode("utf-8", errors="strict"))

        # -- routes --

        def do_GET(self):  # noqa: N802 - http.server's naming
            url = urlsplit(self.path)
            try:
                query = self._params(url.query)
                if url.path == "/.well-known/openid-configuration":
                    self._json(200, provider.metadata())
                elif url.path == "/jwks":
                    self._json(200, provider.jwks())
                elif url.path == "/authorize":
                    self._authorize(query, None)
                elif url.path == "/userinfo":
                    self._json(200, provider.userinfo(self.headers.get("Authorization")))
                elif url.path == "/logout":
                    target = provider.end_session(query)
                    if target:
                        self._redirect(target)
                    else:
                        self._send(200, "<!doctype html><p>Signed out.</p>", "text/html; charset=utf-8")
                else:
                    self._json(404, {"error": "not_found"})
            except OAuthError as err:
                self._oauth_error(err)

        def do_POST(self):  # noqa: N802
            path = urlsplit(self.path).path
            try:
                form = self._form()
                if path == "/token":
                    token = provider.exchange_code(form, self.headers.get("Authorization"))
                    self._json(200, token, {"Pragma": "no-cache"})
                elif path == "/authorize":
                    self._authorize(form, form)
                elif path == "/userinfo":
                    self._json(200, provider.userinfo(self.headers.get("Authorization")))
                else:
                    self._json(404, {"error": "not_found"})
            except OAuthError as err:
                self._oauth_error(err)
            except UnicodeDecodeError:
                self._json(400, {"error": "invalid_request", "error_description": "body is not UTF-8"})

        def _authorize(self, params: dict[str, str], submitted: dict[str, str] | None):
            """GET shows the form; POST (the form, carrying the request's parameters again, which
            are checked again) signs the user in and redirects with code and state."""
            try:
                redirect_uri = provider.check_authorization(params)
            except OAuthError as err:
                if err.status != 302:  # never redirect to an unchecked client or URI
                    msg = f"{err.error}: {err.description}"
                    page = f'<!doctype html><h1>Sign-in request refused</h1><p id="{ERROR_ID}">{html.escape(msg)}</p>'
                    self._send(400, page, "text/html; charset=utf-8")
                    return
                error = {
                    "error": err.error,
                    "error_description": err.description,
                    "state": params.get("state"),
                }
                self._redirect(_with_query(params["redirect_uri"], error))
                return
            if submitted is None:
                self._send(200, _page(params), "text/html; charset=utf-8")
                return
            email, password = submitted.get("username", "").strip(), submitted.get("password", "")
            if not provider.authenticate_user(email, password):
                provider.record({"event": "login_failed", "user": email})
                page = _page(params, error="Wrong e-mail or password.", username=email)
                self._send(200, page, "text/html; charset=utf-8")
                return
            code = provider.issue_code(params, email)
            self._redirect(_with_query(redirect_uri, {"code": code, "state": params.get("state", "")}))

    return Handler


@contextmanager
def oidc_provider(
    users: Mapping[str, str],
    *,
    client_id: str = "embex-test-client",
    client_secret: str | None = None,
    redirect_uris: tuple[str, ...] | list[str] = (),
    host: str = "127.0.0.1",
    port: int = 0,
) -> Iterator[OIDCProvider]:
    """A running ``OIDCProvider`` on a free port of ``host``; stopped on exit."""
    provider = OIDCProvider(
        users,
        client_id=client_id,
        client_secret=client_secret,
        redirect_uris=redirect_uris,
        host=host,
        port=port,
    ).start()
    try:
        yield provider
    finally:
        provider.stop()


# -- browser steps (Playwright), reusable against any app whose button calls st.login() ---------


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def submit_provider_form(page, user: str, password: str, *, timeout_ms: float = 60_000) -> None:
    """On the provider's sign-in page: fill the form, submit it and wait for the resulting page
    (the app after its /oauth2callback, or the provider again). Raises ``SignInFailed`` with the
    provider's message when it stays on the provider."""
    form = page.locator(f"#{FORM_ID}")
    form.wait_for(timeout=timeout_ms)
    provider_origin = _origin(page.url)
    form.get_by_label("E-mail").fill(user)
    form.get_by_label("Password").fill(password)
    with page.expect_navigation(timeout=timeout_ms):
        form.get_by_role("button", name="Continue").click()
    if _origin(page.url) == provider_origin:
        error = page.locator(f"#{ERROR_ID}")
        raise SignInFailed(error.inner_text() if error.count() else f"still on the provider: {page.url}")


def sign_in(
    page, app_url: str, user: str, password: str, *, button: str = "Sign in", timeout_ms: float = 60_000
) -> None:
    """Open ``app_url``, click its ``button`` (which calls ``st.login()``), sign in on the
    provider's form and wait until the app has run again after coming back. Raises
    ``SignInFailed`` (the browser stays on the provider's page) when the password is refused."""
    from analytics.screenshot import wait_for_app

    page.goto(app_url)
    wait_for_app(page, timeout_ms)
    page.get_by_role("button", name=button).click()
    page.locator(f"#{FORM_ID}").wait_for(timeout=timeout_ms)
    submit_provider_form(page, user, password, timeout_ms=timeout_ms)
    wait_for_app(page, timeout_ms)


def sign_out(page, *, button: str = "Sign out", timeout_ms: float = 60_000) -> None:
    """Click the app's ``button`` (which calls ``st.logout()``) and wait until the app is back:
    Streamlit clears its cookies at /auth/logout, goes through the provider's end-session
    endpoint and its /oauth2callback, and lands on the app's root."""
    from analytics.screenshot import wait_for_app

    with page.expect_navigation(timeout=timeout_ms):
        page.get_by_role("button", name=button).click()
    wait_for_app(page, timeout_ms)
