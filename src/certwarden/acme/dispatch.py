"""The explicit registry of authenticated ACME resources: endpoint -> (handler, key rule)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from certwarden.acme import accounts, certificates, orders
from certwarden.acme.context import Endpoint, Handler, KeyRule

HANDLERS: Mapping[Endpoint, tuple[Handler, KeyRule]] = MappingProxyType({
    Endpoint.NEW_ACCOUNT: (accounts.new_account, KeyRule.JWK),
    Endpoint.ACCOUNT: (accounts.account, KeyRule.KID),
    Endpoint.ORDERS: (orders.list_orders, KeyRule.KID),
    Endpoint.KEY_CHANGE: (accounts.key_change, KeyRule.KID),
    Endpoint.NEW_ORDER: (orders.new_order, KeyRule.KID),
    Endpoint.ORDER: (orders.get_order, KeyRule.KID),
    Endpoint.FINALIZE: (certificates.finalize, KeyRule.KID),
    Endpoint.AUTHZ: (orders.authorization, KeyRule.KID),
    Endpoint.CHALLENGE: (orders.challenge, KeyRule.KID),
    Endpoint.CERTIFICATE: (certificates.download, KeyRule.KID),
    Endpoint.REVOKE_CERT: (certificates.revoke, KeyRule.EITHER),
})
