"""The tracker's email routes: one-click unsubscribe, the bounce webhook, and the sign-up form.

- `GET /u/{token}`: a page with an "Unsubscribe" button (a mail scanner following the link unsubscribes nobody);
- `POST /u/{token}`: unsubscribes at once (RFC 8058 one-click: the provider POSTs `List-Unsubscribe=One-Click`);
- `POST /hooks/bounce`: bounces and complaints from the relay (signed), see `drainage.email.bounces`;
- `GET`/`POST /subscribe`: the sign-up form (`email.signup.list`); with double opt-in it mails a confirmation
  link, and `GET`/`POST /subscribe/confirm/{token}` are the confirmation page and its button.

Pages never echo request data; tokens are signed (`drainage.email.tokens`) and carry no guessable id.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
from datetime import UTC, datetime, timedelta
from html import escape
from urllib.parse import parse_qsl

from sqlalchemy import Engine, select
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from drainage.channel import MailChannel
from drainage.config import LoadedConfig
from drainage.email import bounces, suppression
from drainage.email.addresses import normalize
from drainage.email.service import send_single
from drainage.email.subscribers import ImportReport, Incoming, import_subscribers, set_status
from drainage.email.tokens import Tokens, token_key
from drainage.logs import event
from drainage.registry import channel_types
from drainage.store.db import session
from drainage.store.email_models import Subscriber, SubscriberStatus, SuppressionReason
from drainage.tracker.orders import verify_generic

MAX_BODY = 1 << 20
RESEND_AFTER = timedelta(minutes=10)
"""A pending sign-up gets at most one confirmation mail per this long (no mail bombing through the form)."""

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="robots" content="noindex"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:15vh auto;padding:0 1rem;color:#222}}
button{{font-size:1rem;padding:.5rem 1rem}}input{{font-size:1rem;padding:.4rem;width:100%;margin:.3rem 0}}</style>
</head><body><h1>{title}</h1>{body}</body></html>
"""


def page(title: str, body_html: str, status: int = 200) -> HTMLResponse:
    """A small page; `body_html` is built only from escaped values."""
    return HTMLResponse(_PAGE.format(title=escape(title), body=body_html), status_code=status,
                        headers={"cache-control": "no-store, private", "referrer-policy": "no-referrer"})


class EmailWeb:
    """The routes, bound to one tracker's config and database."""

    def __init__(self, config: LoadedConfig, engine: Engine, replay_window: float) -> None:
        self.config, self.engine, self.replay_window = config, engine, replay_window
        cfg = config.config
        self.store = cfg.store.name
        self.home = cfg.store.base_url
        self.public_url = cfg.tracker.public_url.rstrip("/")
        self.email = cfg.email
        self.bounce_secret = (cfg.email.bounce_secret.get_secret_value() if cfg.email.bounce_secret else "") or None
        self._tokens: Tokens | None = None

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/u/{token}", self.unsubscribe, methods=["GET", "HEAD", "POST"]),
            Route("/hooks/bounce", self.bounce_hook, methods=["POST"]),
            Route("/subscribe", self.subscribe, methods=["GET", "POST"]),
            Route("/subscribe/confirm/{token}", self.confirm, methods=["GET", "HEAD", "POST"]),
        ]

    async def tokens(self) -> Tokens:
        if self._tokens is None:
            configured = self.email.token_secret.get_secret_value() if self.email.token_secret else None
            self._tokens = Tokens(await asyncio.to_thread(token_key, self.engine, configured))
        return self._tokens

    # -- unsubscribe ---------------------------------------------------------------------------------------------
    async def unsubscribe(self, request: Request) -> Response:
        token = request.path_params["token"]
        found = (await self.tokens()).read_unsubscribe(token) if len(token) < 400 else None
        if found is None:
            return page("This link is not valid", f'<p>It may have been cut short. You can still visit '
                        f'<a href="{escape(self.home, quote=True)}">{escape(self.store)}</a>.</p>', 404)
        if request.method != "POST":  # a person (or a scanner) opened the link: ask, do nothing yet
            return page(f"Unsubscribe from {self.store}?",
                        '<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click">'
                        "<button type=\"submit\">Unsubscribe</button></form>"
                        "<p>You will not receive any more emails from us.</p>")
        email = await asyncio.to_thread(suppression.unsubscribe_ref, self.engine, found.ref,
                                        source="one-click", campaign=found.campaign or None)
        event("email.unsubscribed", campaign=found.campaign, known=email is not None)
        return page("You are unsubscribed", f"<p>You will not receive any more emails from {escape(self.store)}."
                                            "</p>")

    # -- bounces -------------------------------------------------------------------------------------------------
    async def bounce_hook(self, request: Request) -> Response:
        if not self.bounce_secret:
            return JSONResponse({"error": "the bounce webhook is off: set email.bounce_secret"}, status_code=503)
        declared = request.headers.get("content-length", "0")
        if not declared.isdigit() or int(declared) > MAX_BODY:
            return JSONResponse({"error": "body too large or without a length"}, status_code=413)
        body = await request.body()
        key = request.query_params.get("key")
        if key is not None:  # SNS cannot sign with our secret: it calls a URL that carries it
            problem = None if hmac.compare_digest(key.encode(), self.bounce_secret.encode()) else "bad key"
        else:
            problem = verify_generic(self.bounce_secret, body, request.headers.get("x-drainage-signature"),
                                     time.time(), self.replay_window)
        if problem is not None:
            return JSONResponse({"error": problem}, status_code=401)
        try:
            events, confirm_url = bounces.read(json.loads(body))
        except (ValueError, bounces.BadBounce) as exc:
            message = str(exc) if isinstance(exc, bounces.BadBounce) else "body is not valid JSON"
            return JSONResponse({"error": message}, status_code=422)
        if confirm_url is not None:
            event("email.sns_subscription", confirm_url=confirm_url)
            return JSONResponse({"result": "subscription confirmation: visit SubscribeURL to confirm",
                                 "subscribe_url": confirm_url})
        suppressed = 0
        for item in events:
            if item.reason is not None:
                suppressed += await asyncio.to_thread(suppression.suppress, self.engine, item.email, item.reason,
                                                      source="webhook", detail=item.detail)
        event("email.bounces", events=len(events), suppressed=suppressed)
        return JSONResponse({"events": len(events), "suppressed": suppressed,
                             "ignored_soft": sum(1 for e in events if e.reason is None)})

    # -- sign-up -------------------------------------------------------------------------------------------------
    async def subscribe(self, request: Request) -> Response:
        signup = self.email.signup
        if not signup.list:
            return page("Not found", "<p>There is no sign-up form here.</p>", 404)
        if request.method != "POST":
            return page(f"Subscribe to {self.store}",
                        '<form method="post"><label>Email<input type="email" name="email" required></label>'
                        '<label>Name (optional)<input type="text" name="name"></label>'
                        '<button type="submit">Subscribe</button></form>')
        body = await request.body()
        if len(body) > 16384:
            return page("Too large", "<p>That form was too large.</p>", 413)
        form = dict(parse_qsl(body.decode("utf-8", "replace")))  # urlencoded, as the form posts it
        try:
            email = normalize(str(form.get("email") or "")[:320])
        except ValueError:
            return page("That does not look like an email address", '<p><a href="/subscribe">Try again</a></p>', 422)
        name = " ".join(str(form.get("name") or "").split())[:200]
        if not signup.double_opt_in:
            await asyncio.to_thread(self._add, email, name, SubscriberStatus.ACTIVE, signup.consent_source)
            return page("You are subscribed", f"<p>Welcome to {escape(self.store)}.</p>")
        ref = await asyncio.to_thread(self._pending, email, name, signup.consent_source)
        if ref is not None:
            await self._send_confirmation(email, name, ref)
        # the same answer whether or not the address was known (nobody learns who subscribes)
        return page("Check your inbox", f"<p>We sent a confirmation link to your address. Your subscription to "
                                        f"{escape(self.store)} starts when you click it.</p>")

    def _add(self, email: str, name: str, status: str, source: str) -> None:
        report = ImportReport()
        import_subscribers(self.engine, [Incoming(email, source, datetime.now(UTC), name)],
                           [self.email.signup.list or ""], report, status=status)

    def _pending(self, email: str, name: str, source: str) -> str | None:
        """Record a pending sign-up; the ref to confirm, or None when no mail should go out (already active, or a
        confirmation was sent moments ago)."""
        with session(self.engine) as s:
            row = s.execute(select(Subscriber).where(Subscriber.email == email)).scalar_one_or_none()
        if row is not None:
            recent = datetime.now(UTC) - _aware(row.updated_at) < RESEND_AFTER
            if row.status == SubscriberStatus.ACTIVE or recent:
                return None
        self._add(email, name, SubscriberStatus.PENDING, f"{source} (unconfirmed)")
        with session(self.engine) as s:
            found = s.execute(select(Subscriber).where(Subscriber.email == email)).scalar_one()
            found.updated_at = datetime.now(UTC)
            s.add(found)
            s.commit()
            return found.ref

    async def _send_confirmation(self, email: str, name: str, ref: str) -> None:
        channel = self._channel()
        if channel is None:
            event("email.signup_unsent", reason="email.signup.channel is not an email channel")
            return
        tokens = await self.tokens()
        url = f"{self.public_url}/subscribe/confirm/{tokens.confirm(ref)}"
        text = (f"Hello{' ' + name if name else ''},\n\nplease confirm that you want emails from {self.store}:\n"
                f"{url}\n\nIf you did not sign up, ignore this message: you will not hear from us again.")
        outcome = await send_single(channel, email, name, f"Please confirm your subscription to {self.store}", text,
                                    f"{self.public_url}/u/{tokens.unsubscribe(ref, '')}")
        event("email.confirmation_sent", result=outcome)

    def _channel(self) -> MailChannel | None:
        name = self.email.signup.channel
        options = self.config.channels.get(name or "")
        if options is None:
            return None
        channel = channel_types()[options.type](name or "", options, base_dir=self.config.root)
        return channel if isinstance(channel, MailChannel) else None

    async def confirm(self, request: Request) -> Response:
        token = request.path_params["token"]
        ref = (await self.tokens()).read_confirm(token) if len(token) < 400 else None
        if ref is None:
            return page("This link is not valid", "<p>It may have expired (links work for a week). "
                                                  '<a href="/subscribe">Sign up again</a>.</p>', 404)
        if request.method != "POST":
            return page(f"Confirm your subscription to {self.store}",
                        '<form method="post"><button type="submit">Yes, send me emails</button></form>')
        email = await asyncio.to_thread(self._confirm, ref)
        event("email.signup_confirmed", known=email is not None)
        return page("You are subscribed", f"<p>Thank you: welcome to {escape(self.store)}.</p>")

    def _confirm(self, ref: str) -> str | None:
        email = set_status(self.engine, ref, SubscriberStatus.ACTIVE)
        if email is None:
            return None
        with session(self.engine) as s:
            row = s.execute(select(Subscriber).where(Subscriber.ref == ref)).scalar_one()
            row.consent_source = f"{self.email.signup.consent_source} (confirmed by email)"
            row.consent_at = datetime.now(UTC)
            s.add(row)
            s.commit()
        if suppression.is_suppressed(self.engine, email) == SuppressionReason.UNSUBSCRIBED:
            suppression.lift(self.engine, email)  # they asked for it again, and proved the mailbox is theirs
        return email


def email_routes(config: LoadedConfig, engine: Engine, replay_window: float) -> list[BaseRoute]:
    """The routes the tracker adds for email (`replay_window`: seconds a signed webhook call stays valid)."""
    return EmailWeb(config, engine, replay_window).routes()


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

