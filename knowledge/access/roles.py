"""Roles: which pages a user may open, which collections they may search and upload to, and the
persona (system prompt, model, answer policy, banned phrases) and rate limit they answer with.

Roles live in the ``roles`` table (one JSON document per role) and are edited on the Roles page
or with ``kdesk roles``; the shipped templates are written on first start. Users hold roles
through ``user_roles`` rows: assigned by an admin (source "admin") or mapped from the identity
provider's claims at each OIDC sign-in (source "oidc"). A user's access is the union over their
roles: the pages of any role, every collection any role's patterns match ("*": all).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from fnmatch import fnmatchcase

from knowledge.access.ratelimit import RateLimit, most_generous
from knowledge.assistant.personas import (
    ANSWER_POLICIES,
    BANNED_ACTIONS,
    DEFAULT_SYSTEM_PROMPT,
    ROUTE_RULES,
    BannedPhrase,
    Persona,
)
from knowledge.core.errors import KdeskError

# Pages a role may open. "knowledge": upload and manage documents; "roles": the role
# configuration page; "admin": users and the audit log.
PAGES: tuple[str, ...] = ("chat", "knowledge", "contracts", "analytics", "roles", "admin")
ROLE_NAME = re.compile(r"^[\w][\w .+-]{0,62}$")


@dataclass(frozen=True)
class Role:
    name: str
    description: str = ""
    pages: tuple[str, ...] = ("chat",)
    collections: tuple[str, ...] = ()  # patterns of the collections it may search ("*": all)
    upload_collections: tuple[str, ...] = ()  # patterns of those it may upload to and delete in
    persona: Persona = field(default_factory=Persona)
    rate_limit: RateLimit = field(default_factory=RateLimit)
    tools: tuple[str, ...] = ()  # patterns of the tools it may use ("*": all)


def overview_rows(
    roles: Iterable[Role], members: Mapping[str, Sequence[str]]
) -> list[dict[str, str]]:
    """One row per role for the Roles page's overview: what it may open, search, upload to and
    use, how it answers, and who holds it."""
    return [
        {
            "role": r.name,
            "pages": ", ".join(r.pages),
            "search": ", ".join(r.collections),
            "upload": ", ".join(r.upload_collections),
            "tools": ", ".join(r.tools),
            "answers": r.persona.answer_policy,
            "users": ", ".join(members.get(r.name, ())),
        }
        for r in roles
    ]


def matches(collection: str, patterns: Iterable[str]) -> bool:
    """Whether a collection name matches any pattern (shell-style, case-sensitive: "Sales*")."""
    return any(fnmatchcase(collection, pattern) for pattern in patterns)


# Access: what a user may do, resolved from their roles ------------------------------------------


@dataclass(frozen=True)
class Access:
    """A user's effective permissions: the union over ``roles``. No roles: no access at all."""

    user: str
    roles: tuple[Role, ...] = ()

    @property
    def pages(self) -> frozenset[str]:
        return frozenset(page for role in self.roles for page in role.pages)

    @property
    def role_names(self) -> tuple[str, ...]:
        return tuple(role.name for role in self.roles)

    @property
    def rate_limit(self) -> RateLimit:
        return most_generous(role.rate_limit for role in self.roles)

    def may_open(self, page: str) -> bool:
        return page in self.pages

    def may_search(self, collection: str) -> bool:
        return any(matches(collection, role.collections) for role in self.roles)

    def may_upload(self, collection: str) -> bool:
        return any(matches(collection, role.upload_collections) for role in self.roles)

    def may_use_tool(self, tool: str) -> bool:
        return any(matches(tool, role.tools) for role in self.roles)

    def searchable(self, collections: Iterable[str]) -> list[str]:
        return [c for c in collections if self.may_search(c)]

    def uploadable(self, collections: Iterable[str]) -> list[str]:
        return [c for c in collections if self.may_upload(c)]

    def role(self, name: str | None) -> Role | None:
        """One of the user's roles by name (None: not one of theirs); no name: the first."""
        if name is None:
            return self.roles[0] if self.roles else None
        return next((r for r in self.roles if r.name == name), None)


# Templates ---------------------------------------------------------------------------------------

TECH_SUPPORT_PROMPT = (
    "You are the tech support assistant. Answer only from the numbered sources and cite every "
    "sentence as [n]. Never guess: when the sources do not say, answer that the knowledge base "
    "does not cover it and suggest opening a support ticket. Give steps as a short list."
)
SALES_PROMPT = (
    "You are the sales assistant. Answer from the numbered sources and cite them as [n]; you may "
    "add general product knowledge, clearly as such. Never promise refunds, returns, discounts "
    "or delivery dates: refer to the returns policy and the terms of sale instead."
)
LEGAL_PROMPT = (
    "You are the legal assistant. Quote the authorised sources verbatim, in quotation marks, "
    "each followed by its [n]. Do not paraphrase, interpret or advise."
)
RETURNS_WORDING = "returns and refunds as set out in our returns policy"
SALES_BANNED = tuple(
    BannedPhrase(phrase, "block_and_rephrase", RETURNS_WORDING)
    for phrase in (
        "guaranteed refund",
        "money-back guarantee",
        "full refund",
        "free returns",
        "you can return it",
        "we will refund",
    )
) + (BannedPhrase("we promise", "refuse"),)
SUPPORT_BANNED = tuple(
    BannedPhrase(phrase, "refuse") for phrase in ("i guess", "my guess is", "i assume")
)
LEGAL_BANNED = tuple(
    BannedPhrase(phrase, "refuse")
    for phrase in ("i advise you", "you should sign", "you should sue")
)


READ_TOOLS = ("summarise_document", "list_documents", "clause_records")  # knowledge/tools/builtin


def templates() -> list[Role]:
    """The roles a fresh install starts with (all editable); every role gets the built-in tools
    that only read, the admin every tool."""
    return [replace(r, tools=("*",) if r.name == "admin" else READ_TOOLS) for r in _roles()]


def _roles() -> list[Role]:
    everyday = RateLimit(requests=30, tokens=60_000, window_s=600)
    busy = RateLimit(requests=60, tokens=120_000, window_s=600)
    return [
        Role(
            "employee",
            "Everyone: asks questions in the company-wide collections.",
            ("chat",),
            ("Company policies", "general"),
            persona=Persona("employee"),
            rate_limit=everyday,
        ),
        Role(
            "support lead",
            "Runs tech support: maintains the support collections, sees usage.",
            ("chat", "knowledge", "analytics"),
            ("Support*", "Product*", "Company policies", "general"),
            ("Support*", "Product*"),
            Persona("support lead", TECH_SUPPORT_PROMPT, 0.0, 500, banned_phrases=SUPPORT_BANNED),
            busy,
        ),
        Role(
            "manager",
            "Sees every collection, contracts and usage analytics; maintains company policies.",
            ("chat", "knowledge", "contracts", "analytics"),
            ("*",),
            ("Company policies", "general"),
            Persona("manager"),
            busy,
        ),
        Role(
            "admin",
            "Everything, including roles, users and the audit log.",
            PAGES,
            ("*",),
            ("*",),
            Persona("admin", DEFAULT_SYSTEM_PROMPT),
            RateLimit(),
        ),
        Role(
            "tech support",
            "Persona: cites the knowledge base, never guesses.",
            ("chat",),
            ("Support*", "Product*", "general"),
            persona=Persona(
                "tech support", TECH_SUPPORT_PROMPT, 0.0, 500, "", "must_cite", SUPPORT_BANNED
            ),
            rate_limit=busy,
        ),
        Role(
            "sales",
            "Persona: never promises returns or refunds.",
            ("chat",),
            ("Sales*", "Product*", "Company policies", "general"),
            persona=Persona("sales", SALES_PROMPT, 0.3, 400, "", "general_knowledge", SALES_BANNED),
            rate_limit=everyday,
        ),
        Role(
            "legal",
            "Persona: quotes authorised contract and legal texts only.",
            ("chat", "contracts"),
            ("Contracts", "Legal*"),
            ("Legal*",),
            Persona("legal", LEGAL_PROMPT, 0.0, 600, "", "quote_only", LEGAL_BANNED),
            everyday,
        ),
    ]


# Validation and storage --------------------------------------------------------------------------


def patterns_from_text(text: str) -> tuple[str, ...]:
    """Comma-separated collection patterns as typed in a form: "Sales*, HR" -> ("Sales*", "HR")."""
    return _names(text.split(","))


def banned_phrases_from_rows(rows: Iterable[dict[str, object]]) -> tuple[BannedPhrase, ...]:
    """Banned phrases from table rows (phrase, action, replacement); blank rows are skipped."""

    def text(value: object) -> str:
        return value.strip() if isinstance(value, str) else ""

    return tuple(
        BannedPhrase(
            text(row.get("phrase")),
            text(row.get("action")) or "block_and_rephrase",  # type: ignore[arg-type]
            text(row.get("replacement")),
        )
        for row in rows
        if text(row.get("phrase"))
    )


def _names(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(" ".join(v.split()) for v in values if v and v.strip()))


def validated(role: Role) -> Role:
    """The role with names tidied, or KdeskError saying what is wrong."""
    name = " ".join(role.name.split()).lower()
    if not ROLE_NAME.match(name):
        raise KdeskError(
            "A role name has 1-63 letters, digits, spaces, dots, dashes or plus signs."
        )
    pages = _names(role.pages)
    unknown = sorted(set(pages) - set(PAGES))
    if unknown:
        raise KdeskError(f"Unknown page(s) {', '.join(unknown)}: use {', '.join(PAGES)}.")
    p = role.persona
    if not 0 <= p.temperature <= 2:
        raise KdeskError("A persona's temperature is between 0 and 2.")
    if not 16 <= p.max_tokens <= 8192:
        raise KdeskError("A persona's answers have 16 to 8192 tokens.")
    if p.answer_policy not in ANSWER_POLICIES:
        raise KdeskError(f"Answer policy is one of {', '.join(ANSWER_POLICIES)}.")
    if p.route not in ROUTE_RULES:
        raise KdeskError(f"A persona's model route is one of {', '.join(ROUTE_RULES)}.")
    for banned in p.banned_phrases:
        if banned.action not in BANNED_ACTIONS:
            raise KdeskError(f"A banned phrase's action is one of {', '.join(BANNED_ACTIONS)}.")
    limit = role.rate_limit
    if limit.requests < 0 or limit.tokens < 0 or limit.window_s < 1:
        raise KdeskError("Rate limits are 0 (none) or more, over a window of at least 1 second.")
    phrases = tuple(b for b in p.banned_phrases if b.phrase.strip())
    persona = replace(p, name=name, banned_phrases=phrases)  # a role's persona bears its name
    return replace(
        role,
        name=name,
        description=role.description.strip(),
        pages=pages,
        collections=_names(role.collections),
        upload_collections=_names(role.upload_collections),
        persona=persona,
        tools=_names(role.tools),
    )


def role_config(role: Role) -> dict[str, object]:
    """The role as a JSON-ready dict (what the database stores and `kdesk roles show` prints)."""
    values = asdict(role)
    values["persona"]["banned_phrases"] = [asdict(b) for b in role.persona.banned_phrases]
    return values


def role_from_config(values: dict[str, object]) -> Role:
    persona_values = dict(values.get("persona") or {})  # type: ignore[call-overload]
    banned = tuple(BannedPhrase(**b) for b in persona_values.pop("banned_phrases", []))
    persona = Persona(**persona_values, banned_phrases=banned)
    limit = RateLimit(**(values.get("rate_limit") or {}))  # type: ignore[arg-type]
    return Role(
        name=str(values["name"]),
        description=str(values.get("description", "")),
        pages=tuple(values.get("pages", ())),  # type: ignore[arg-type]
        collections=tuple(values.get("collections", ())),  # type: ignore[arg-type]
        upload_collections=tuple(values.get("upload_collections", ())),  # type: ignore[arg-type]
        persona=persona,
        rate_limit=limit,
        tools=tuple(values.get("tools", ())),  # type: ignore[arg-type]
    )
