"""Routes and the answer cache in the usage events: how answers split between the fast and
the strong model (and the cache), with their latency and tokens, and the cache's hit rate."""

from __future__ import annotations

from sqlalchemy import Engine, func, select

from knowledge.usage.events import UsageEventRow, UsageFilter

E = UsageEventRow


def route_split(engine: Engine, filters: UsageFilter) -> dict[str, dict[str, float | None]]:
    """Per route (events before routing: "none"): answers, share, mean latency and tokens."""
    route = func.coalesce(E.route, "none")
    query = (
        select(
            route,
            func.count(),
            func.avg(E.total_ms),
            func.avg(E.first_token_ms),
            func.avg(E.tokens_in),
            func.avg(E.tokens_out),
            func.sum(E.tokens_in + E.tokens_out),
        )
        .where(*filters.conditions())
        .group_by(route)
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    total = sum(int(r[1]) for r in rows)
    return {
        str(name): {
            "answers": int(n),
            "share": round(int(n) / total, 4) if total else 0.0,
            "mean_total_ms": round(float(ms or 0), 1),
            "mean_first_token_ms": None if first is None else round(float(first), 1),
            "mean_tokens_in": round(float(tin or 0), 1),
            "mean_tokens_out": round(float(tout or 0), 1),
            "tokens": int(tokens or 0),
        }
        for name, n, ms, first, tin, tout, tokens in sorted(rows, key=lambda r: -int(r[1]))
    }


def cache_hit_rate(engine: Engine, filters: UsageFilter) -> dict[str, float | int]:
    query = select(func.count(), func.count().filter(E.cached.is_(True))).where(
        *filters.conditions()
    )
    with engine.connect() as connection:
        answers, cached = connection.execute(query).one()
    answers, cached = int(answers), int(cached or 0)
    rate = round(cached / answers, 4) if answers else 0.0
    return {"answers": answers, "cached": cached, "hit_rate": rate}
