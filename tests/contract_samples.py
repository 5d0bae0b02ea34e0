"""Generated contracts for tests: realistic clause wording, one topic per page, known pages.

``supply_agreement()`` gives the page texts of a three-page supply agreement between two
companies; ``contract_pdf()`` the PDF bytes (via tests.pdfs.make_pdf).
"""

from __future__ import annotations

from tests.pdfs import make_pdf

GOVERNING_LAW_PAGE = 3
RENEWAL_PAGE = 2


def supply_agreement(
    buyer: str = "Acme Robotics, Inc.",
    seller: str = "Northwind Components LLC",
    law: str = "New York",
    date: str = "March 1, 2021",
    renewal_years: str = "one (1) year",
) -> list[str]:
    return [
        "MASTER SUPPLY AGREEMENT\n"
        f'This Master Supply Agreement (the "Agreement") is entered into as of {date} by and '
        f'between {buyer}, a Delaware corporation ("Buyer"), and {seller}, a Texas limited '
        'liability company ("Seller").\n'
        "WHEREAS, Seller manufactures precision components; and WHEREAS, Buyer wishes to purchase "
        "such components. NOW, THEREFORE, the parties agree as follows:\n"
        "1. Supply\n"
        "Seller shall supply the products listed in Exhibit A to Buyer in the quantities set out "
        "in each purchase order. Buyer shall pay each invoice within thirty (30) days of receipt.",
        "2. Term and Termination\n"
        "This Agreement shall commence on the Effective Date and continue for an initial term of "
        "three (3) years. "
        f"Thereafter this Agreement shall automatically renew for successive periods of "
        f"{renewal_years} unless either party gives written notice of non-renewal at least ninety "
        "(90) days before the end of the then-current term.\n"
        "Buyer may terminate this Agreement for convenience at any time upon sixty (60) days "
        "prior written notice to Seller.",
        "3. Miscellaneous\n"
        f"This Agreement shall be governed by and construed in accordance with the laws of the "
        f"State of {law}, without regard to its conflict of laws principles.\n"
        "Neither party may assign this Agreement without the prior written consent of the other "
        "party, which consent shall not be unreasonably withheld.\n"
        "Seller shall maintain commercial general liability insurance with limits of not less "
        "than $2,000,000 per occurrence during the term of this Agreement.",
    ]


def contract_pdf(**kwargs: str) -> bytes:
    return make_pdf(supply_agreement(**kwargs), title="Master Supply Agreement")
