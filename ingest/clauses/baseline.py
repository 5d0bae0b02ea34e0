# ruff: noqa: E501 - one row of patterns per category reads best on one line
"""The keyword baseline: one list of regular expressions per category, applied to sentences.

It is measured in the same run as the model (``kdesk clauses eval``) so the two figures are
comparable; it is what a careful afternoon of rule writing gives, not a straw man.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ingest.clauses.extract import ClauseCandidate
from ingest.clauses.segments import segment_pages
from ingest.clauses.values import normalised_value
from ingest.document import Page

KEYWORDS: dict[str, tuple[str, ...]] = {
    "Parties": (r"\bby and (?:between|among)\b", r"\bbetween\b.*\b(?:inc|llc|ltd|corporation)\b"),
    "Agreement Date": (r"\b(?:dated|made|entered into)\b.*\bas of\b", r"\bdated\b.*\b(?:19|20)\d\d\b"),
    "Effective Date": (r"\beffective date\b", r"\beffective as of\b"),
    "Expiration Date": (r"\bterm of this agreement\b", r"\bshall (?:expire|terminate) on\b", r"\binitial term\b"),
    "Renewal Term": (r"\bautomatically (?:be )?renew", r"\brenewal term\b", r"\bsuccessive\b.*\bperiods?\b"),
    "Notice Period To Terminate Renewal": (r"\bnotice of (?:its )?(?:intent|intention) not to renew\b", r"\bprior to the (?:end|expiration) of\b.*\bterm\b"),
    "Governing Law": (r"\bgoverned by\b.*\blaws?\b", r"\bgoverning law\b"),
    "Most Favored Nation": (r"\bmost favou?red\b", r"\bno less favou?rable\b"),
    "Competitive Restriction Exception": (r"\bnotwithstanding\b.*\bcompet", r"\bshall not prevent\b"),
    "Non-Compete": (r"\bnon-?compet", r"\bshall not\b.*\bcompet", r"\bcompeting products?\b"),
    "Exclusivity": (r"\bexclusive\b(?!.*\bnon-exclusive\b)", r"\bsole (?:and exclusive )?(?:supplier|distributor|provider)\b"),
    "No-Solicit Of Customers": (r"\bsolicit\b.*\bcustomers?\b",),
    "No-Solicit Of Employees": (r"\bsolicit\b.*\bemployees?\b", r"\bhire\b.*\bemployees?\b"),
    "Non-Disparagement": (r"\bdisparag",),
    "Termination For Convenience": (r"\bterminate\b.*\bfor convenience\b", r"\bterminate\b.*\bfor any reason\b", r"\bterminate\b.*\bwithout cause\b", r"\bterminate\b.*\bat any time\b.*\bnotice\b"),
    "Rofr/Rofo/Rofn": (r"\bright of first (?:refusal|offer|negotiation)\b", r"\bfirst right\b"),
    "Change Of Control": (r"\bchange (?:of|in) control\b", r"\bmerger\b.*\b(?:terminate|assign)", r"\bacquisition\b.*\bvoting\b"),
    "Anti-Assignment": (r"\bmay not\b.*\bassign", r"\bshall not\b.*\bassign", r"\bassign\b.*\bwithout\b.*\bconsent\b"),
    "Revenue/Profit Sharing": (r"\broyalt(?:y|ies)\b", r"\b(?:revenue|profit)s?\b.*\bshar", r"\bpercent\b.*\b(?:revenue|sales)\b"),
    "Price Restrictions": (r"\bprice\b.*\bshall not (?:increase|exceed)\b", r"\bprice (?:increase|adjustment)s?\b"),
    "Minimum Commitment": (r"\bminimum\b.*\b(?:purchase|order|quantit|commitment)", r"\bat least\b.*\bunits\b"),
    "Volume Restriction": (r"\bshall not exceed\b.*\b(?:units|quantit|volume)", r"\bmaximum\b.*\b(?:units|quantit|volume)"),
    "Ip Ownership Assignment": (r"\bhereby assigns?\b", r"\bshall (?:be the|become the) (?:sole and )?exclusive property\b", r"\bshall own\b.*\b(?:intellectual property|rights)\b"),
    "Joint Ip Ownership": (r"\bjointly owned\b", r"\bjoint ownership\b", r"\bco-own"),
    "License Grant": (r"\bhereby grants?\b.*\blicen[cs]e\b", r"\bgrants? to\b.*\b(?:licen[cs]e|right to use)\b"),
    "Non-Transferable License": (r"\bnon-?transferable\b", r"\bnon-?sublicensable\b"),
    "Affiliate License-Licensor": (r"\baffiliates?\b.*\bgrants?\b.*\blicen[cs]e\b",),
    "Affiliate License-Licensee": (r"\blicen[cs]e\b.*\b(?:to|for)\b.*\baffiliates\b",),
    "Unlimited/All-You-Can-Eat-License": (r"\bunlimited\b.*\b(?:licen[cs]e|use|copies|users)\b",),
    "Irrevocable Or Perpetual License": (r"\birrevocable\b", r"\bperpetual\b"),
    "Source Code Escrow": (r"\bsource code\b.*\bescrow\b", r"\bescrow agent\b"),
    "Post-Termination Services": (r"\b(?:after|following|upon) (?:the )?(?:termination|expiration)\b.*\bshall\b", r"\btransition (?:period|services)\b"),
    "Audit Rights": (r"\baudit\b", r"\binspect\b.*\b(?:books|records)\b"),
    "Uncapped Liability": (r"\bshall not apply to\b.*\b(?:indemnif|breach|gross negligence)", r"\bexcept\b.*\b(?:indemnification|confidentiality)\b.*\bliab"),
    "Cap On Liability": (r"\b(?:aggregate|total|maximum) liability\b", r"\bin no event\b.*\bliab\w*\b.*\bexceed\b", r"\bshall not exceed\b.*\b(?:paid|fees)\b"),
    "Liquidated Damages": (r"\bliquidated damages\b", r"\btermination fee\b"),
    "Warranty Duration": (r"\bwarrant\w*\b.*\bfor a period of\b", r"\bwarranty period\b"),
    "Insurance": (r"\binsurance\b", r"\binsured\b"),
    "Covenant Not To Sue": (r"\bnot to sue\b", r"\bshall not\b.*\b(?:challenge|contest)\b.*\bvalidity\b"),
    "Third Party Beneficiary": (r"\bthird[- ]party beneficiar",),
}  # fmt: skip
_COMPILED = {
    category: [re.compile(p, re.IGNORECASE) for p in patterns]
    for category, patterns in KEYWORDS.items()
}


def keyword_clauses(pages: Sequence[Page]) -> list[ClauseCandidate]:
    _, segments = segment_pages(pages)
    found = []
    for category, patterns in _COMPILED.items():
        for s in segments:
            if any(p.search(s.text) for p in patterns):
                value = normalised_value(category, s.text)
                found.append(ClauseCandidate(category, s.text, s.page, s.start, s.end, value, 1.0))
    return found
