"""Single sign-on: the user name an OIDC provider's claims give, and the roles they map to
(KDESK_OIDC_ROLE_MAPPING)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from knowledge.core.errors import SettingsError


@dataclass(frozen=True)
class ClaimMapping:
    """KDESK_OIDC_ROLE_MAPPING, e.g.
    ``{"claims": {"kdesk-admins": ["admin"], "sales-team": ["sales"]},
    "emails": {"ceo@example.com": ["manager"], "*@example.com": ["employee"]},
    "default": []}``: values of the roles claim (a group name), e-mail addresses or patterns
    (only verified e-mails count) and the roles of everyone else who signs in."""

    claims: dict[str, tuple[str, ...]] = field(default_factory=dict)
    emails: dict[str, tuple[str, ...]] = field(default_factory=dict)
    default: tuple[str, ...] = ()


def parse_claim_mapping(text: str) -> ClaimMapping:
    if not text.strip():
        return ClaimMapping()
    try:
        raw = json.loads(text)
        if not isinstance(raw, dict) or set(raw) - {"claims", "emails", "default"}:
            raise ValueError("keys are claims, emails and default")

        def table(values: object) -> dict[str, tuple[str, ...]]:
            if not isinstance(values, dict):
                raise ValueError("claims and emails map a value to a list of roles")
            return {str(k).casefold(): _role_list(v) for k, v in values.items()}

        return ClaimMapping(
            table(raw.get("claims", {})),
            table(raw.get("emails", {})),
            _role_list(raw.get("default", [])),
        )
    except ValueError as exc:
        raise SettingsError(f"KDESK_OIDC_ROLE_MAPPING is not valid: {exc}") from None


def _role_list(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("roles are given as a list of names")
    return tuple(value)


def _claim_values(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple, set)):
        return [str(v) for v in value]
    return []


def _claim(claims: Mapping[str, object], path: str) -> object:
    """A claim by name, or by a dotted path into nested claims ("realm_access.roles")."""
    if path in claims:
        return claims[path]
    value: object = claims
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _verified_email(claims: Mapping[str, object]) -> str | None:
    email = claims.get("email")
    if not isinstance(email, str) or "@" not in email or claims.get("email_verified") is False:
        return None
    return email.strip().lower()


def unverified_email(claims: Mapping[str, object]) -> str | None:
    """The e-mail the provider sent with ``email_verified: false`` (such a sign-in is refused:
    anyone may type any address into an account at many providers)."""
    email = claims.get("email")
    if claims.get("email_verified") is not False or not isinstance(email, str):
        return None
    return email.strip().lower()[:200]


def meant_for(claims: Mapping[str, object], client_id: str) -> bool:
    """Whether the ID token's audience (``aud``: a string or a list) names ``client_id``, as
    OIDC Core 3.1.3.7 requires. Streamlit's sign-in (Authlib) checks the audience only through
    ``azp``, so a token for another client that names this one as its ``azp`` would pass there.
    An identity without ``aud`` (never one of Streamlit's: Authlib requires it) or an unknown
    client id is not judged here."""
    audience = claims.get("aud")
    if audience is None or not client_id:
        return True
    values = [audience] if isinstance(audience, str) else _claim_values(audience)
    return client_id in values


def oidc_user_name(claims: Mapping[str, object]) -> str:
    """The verified e-mail, else the subject (lower-case); empty when there is neither."""
    email = _verified_email(claims)
    if email:
        return email[:200]
    subject = claims.get("sub")
    return str(subject).strip().lower()[:200] if subject else ""


def roles_from_claims(
    claims: Mapping[str, object], mapping: ClaimMapping, roles_claim: str = "groups"
) -> list[str]:
    """The roles an identity gets: from its groups/roles claim, its verified e-mail (exact or
    "*@domain" patterns), else the mapping's default. Pure: no database, no Streamlit."""
    found: list[str] = []
    for value in _claim_values(_claim(claims, roles_claim)):
        found.extend(mapping.claims.get(value.casefold(), ()))
    email = _verified_email(claims)
    if email:
        for pattern, roles in mapping.emails.items():
            if fnmatchcase(email, pattern):
                found.extend(roles)
    return list(dict.fromkeys(found or mapping.default))
