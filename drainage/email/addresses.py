"""The one normal form of an email address, used wherever addresses are stored or compared: subscriber import,
the sign-up form, removal, the suppression list, bounces and complaints, unsubscribes.

    normal form = local part, "@", domain in ASCII (an international domain in its IDNA/punycode form),
                  the whole address in lower case

The local part is lowered too. RFC 5321 (2.4) lets a mailbox's local part be case-sensitive, but mailbox
providers do not make that distinction, and a suppression must match however the address was typed: a bounce
for `Ann@Bücher.example` suppresses the subscriber `ann@xn--bcher-kva.example`. Erring this way can only mail
fewer people, never someone who left. Local parts that are not ASCII need SMTPUTF8, which most relays lack, and
are refused at import.
"""

from __future__ import annotations

import contextlib

import idna
from email_validator import EmailNotValidError, validate_email


def normalize(address: str) -> str:
    """The normal form of a valid address; ValueError with the reason if it is not one (see the module doc)."""
    try:
        result = validate_email(address.strip(), check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None
    return (result.ascii_email or result.normalized).lower()


def comparable(address: str) -> str:
    """The normal form of `address` for looking it up, valid or not (an address a relay or a person reports may
    not pass validation): `normalize` when it can, else lower case with the domain in IDNA form when that
    encodes, else plain lower case."""
    text = address.strip()
    try:
        return normalize(text)
    except ValueError:
        pass
    local, at, domain = text.rpartition("@")
    if at and domain:
        with contextlib.suppress(idna.IDNAError, UnicodeError):
            domain = idna.encode(domain, uts46=True).decode("ascii")
        return f"{local}@{domain}".lower()
    return text.lower()
