"""Accounts (RFC 8555 §7.3): newAccount, update, deactivation, keyChange, EAB."""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from typing import Any

from certwarden.acme import jws
from certwarden.acme.context import AcmeCore, Authenticated, RequestContext
from certwarden.acme.model import Account, AccountStatus, utcnow
from certwarden.acme.problems import AcmeProblem, ProblemType, malformed
from certwarden.acme.wire import Reply, Urls

# A deliberately plain address check: local@domain, no spaces, a dotted domain.
_EMAIL = re.compile(r"^[^@\s,;<>]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+$")
MAX_CONTACTS = 10  # an account lists one or two; bounded so a request cannot store a list


def account_json(acct: Account, urls: Urls) -> dict[str, Any]:
    doc: dict[str, Any] = {"status": acct.status.value, "contact": list(acct.contact),
                           "orders": urls.orders(acct.id), "key": dict(acct.jwk)}
    if acct.tos_agreed:
        doc["termsOfServiceAgreed"] = True
    if acct.eab_kid:
        doc["externalAccountBinding"] = {"kid": acct.eab_kid}
    return doc


def _reply(acct: Account, urls: Urls, status: int = 200) -> Reply:
    return Reply(status=status, body=account_json(acct, urls), location=urls.account(acct.id))


def check_contacts(raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(c, str) for c in raw):
        raise malformed("'contact' must be a list of strings")
    if len(raw) > MAX_CONTACTS:
        raise AcmeProblem(ProblemType.INVALID_CONTACT, f"more than {MAX_CONTACTS} contacts")
    out = []
    for c in raw:
        scheme, _, addr = c.partition(":")
        if scheme.lower() != "mailto":
            raise AcmeProblem(ProblemType.UNSUPPORTED_CONTACT,
                              f"contact {c!r}: only mailto: is supported")
        if not _EMAIL.match(addr) or "?" in addr:
            raise AcmeProblem(ProblemType.INVALID_CONTACT, f"contact {c!r} is not an email address")
        out.append(f"mailto:{addr}")
    return tuple(out)


def new_account(srv: AcmeCore, auth: Authenticated, ctx: RequestContext) -> Reply:
    payload = auth.msg.payload_json()
    thumbprint = jws.thumbprint(auth.jwk)
    found = srv.store.account_by_thumbprint(thumbprint)
    if found is not None:
        if found.status != AccountStatus.VALID:
            raise AcmeProblem(ProblemType.UNAUTHORIZED, f"account is {found.status.value}")
        return _reply(found, ctx.urls)
    if payload.get("onlyReturnExisting") is True:
        raise AcmeProblem(ProblemType.ACCOUNT_DOES_NOT_EXIST, "no account for this key")
    srv.registration_limits.take(ctx.client_ip)
    contact = check_contacts(payload.get("contact"))
    agreed = payload.get("termsOfServiceAgreed")
    if agreed is not None and not isinstance(agreed, bool):
        raise malformed("'termsOfServiceAgreed' must be a boolean")
    if srv.settings.terms_of_service and agreed is not True:
        raise AcmeProblem(ProblemType.USER_ACTION_REQUIRED,
                          "you must agree to the terms of service",
                          extra={"instance": srv.settings.terms_of_service})
    account_id = secrets.token_urlsafe(12)
    eab_kid = None
    if payload.get("externalAccountBinding") is not None:
        eab_kid = _check_eab(srv, payload["externalAccountBinding"], auth.jwk, ctx)
    elif srv.settings.eab_required:
        raise AcmeProblem(ProblemType.EXTERNAL_ACCOUNT_REQUIRED,
                          "this directory needs an external account binding")
    acct, created = srv.store.add_account(Account(
        id=account_id, thumbprint=thumbprint, jwk=dict(auth.jwk), status=AccountStatus.VALID,
        contact=contact, tos_agreed=bool(agreed), eab_kid=eab_kid, created_at=utcnow()))
    if created and eab_kid and not srv.store.bind_eab_if(eab_kid, account_id):
        srv.store.update_account(account_id, status=AccountStatus.DEACTIVATED.value)
        raise AcmeProblem(ProblemType.UNAUTHORIZED, "external account key is already bound")
    return _reply(acct, ctx.urls, 201 if created else 200)


def _check_eab(srv: AcmeCore, raw: Any, jwk: Mapping[str, Any], ctx: RequestContext) -> str:
    """§7.3.4: an HMAC'd JWS over the account key, by a key the operator handed out."""
    if not isinstance(raw, dict):
        raise malformed("'externalAccountBinding' must be a JWS object")
    inner = jws.parse(raw, algs=jws.EAB_ALGS, outer=False)
    if inner.kid is None or inner.jwk is not None:
        raise malformed("external account binding needs a 'kid' and no 'jwk'")
    if inner.url != ctx.url:
        raise AcmeProblem(ProblemType.UNAUTHORIZED, "external account binding 'url' is wrong")
    eab = srv.store.eab_key(inner.kid)
    if eab is None:
        raise AcmeProblem(ProblemType.UNAUTHORIZED, f"unknown external account {inner.kid!r}")
    if eab.account_id is not None:
        raise AcmeProblem(ProblemType.UNAUTHORIZED, "external account key is already bound")
    jws.verify_hmac(inner, eab.hmac_key)
    if jws.canonical_jwk(inner.payload_json()) != dict(jwk):
        raise AcmeProblem(ProblemType.UNAUTHORIZED,
                          "external account binding does not sign this account key")
    return inner.kid


def _own_account(auth: Authenticated, ctx: RequestContext) -> Account:
    acct = auth.account
    assert acct is not None
    if acct.id != ctx.resource_id:
        raise AcmeProblem(ProblemType.UNAUTHORIZED, "the 'kid' is not this account")
    return acct


def account(srv: AcmeCore, auth: Authenticated, ctx: RequestContext) -> Reply:
    acct = _own_account(auth, ctx)
    if auth.msg.is_post_as_get:
        return _reply(acct, ctx.urls)
    payload = auth.msg.payload_json()
    changes: dict[str, Any] = {}
    if "contact" in payload:
        changes["contact"] = list(check_contacts(payload["contact"]))
    if payload.get("termsOfServiceAgreed") is True:
        changes["tos_agreed"] = True
    status = payload.get("status")
    if status is not None:
        if status != AccountStatus.DEACTIVATED.value:
            raise malformed("an account's status can only be changed to 'deactivated'")
        changes["status"] = AccountStatus.DEACTIVATED.value
    updated = srv.store.update_account(acct.id, **changes) if changes else None
    return _reply(updated or acct, ctx.urls)


def key_change(srv: AcmeCore, auth: Authenticated, ctx: RequestContext) -> Reply:
    """§7.3.5: the inner JWS, signed by the new key, names the account and its old key."""
    acct = auth.account
    assert acct is not None
    outer = auth.msg.payload_json()
    inner = jws.parse(outer, outer=False)
    if inner.jwk is None or inner.kid is not None:
        raise malformed("keyChange inner JWS needs a 'jwk' (the new key) and no 'kid'")
    if inner.url != auth.msg.url:
        raise malformed("keyChange inner 'url' differs from the outer one")
    jws.verify(inner, inner.jwk)
    body = inner.payload_json()
    if body.get("account") != ctx.urls.account(acct.id):
        raise malformed("keyChange 'account' is not the signing account")
    old = body.get("oldKey")
    if not isinstance(old, dict) or jws.thumbprint(old) != acct.thumbprint:
        raise malformed("keyChange 'oldKey' is not the account's current key")
    new_jwk = jws.canonical_jwk(inner.jwk)
    new_tp = jws.thumbprint(new_jwk)
    holder = srv.store.account_by_thumbprint(new_tp)
    if holder is not None:
        raise AcmeProblem(ProblemType.CONFLICT, "the new key is already in use by an account",
                          headers={"Location": ctx.urls.account(holder.id)})
    if not srv.store.change_account_key_if(acct.id, old_thumbprint=acct.thumbprint,
                                           jwk=new_jwk, thumbprint=new_tp):
        raise AcmeProblem(ProblemType.CONFLICT, "the account key changed concurrently")
    changed = srv.store.account(acct.id)
    assert changed is not None
    return _reply(changed, ctx.urls)


def add_eab_key(srv: AcmeCore, kid: str | None = None) -> tuple[str, str]:
    """Create an external account key; returns (kid, base64url HMAC key) to hand out once."""
    kid = kid or secrets.token_urlsafe(9)
    key = secrets.token_bytes(32)
    srv.store.add_eab_key(kid, key)
    return kid, jws.b64e(key)

