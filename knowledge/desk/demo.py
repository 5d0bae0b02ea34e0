"""A small demo knowledge base that the project writes itself, so a newcomer can ask at once."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from fpdf import FPDF

from knowledge.core.types import IngestReport
from knowledge.desk.ingestion import Upload
from knowledge.desk.root import Desk

POLICIES = "Company policies"
CONTRACTS = "Contracts"

LEAVE_POLICY = [
    "Leave Policy\n\n1. Purpose\nThis policy explains the paid and unpaid leave available to employees "
    "of Northwind Systems Ltd. It applies to all permanent and fixed-term employees.\n\n"
    "2. Annual Leave\nFull-time employees are entitled to 25 working days of paid annual leave per "
    "calendar year. Part-time employees receive annual leave pro rata to their contracted hours. "
    "Annual leave must be requested through the HR portal at least two weeks in advance for "
    "absences longer than three days.",
    "3. Carry-over\nUp to five unused annual leave days may be carried over into the first quarter "
    "of the next calendar year. Days carried over that are not taken by 31 March expire. Unused "
    "leave is not paid out except when employment ends.\n\n4. Sick Leave\nEmployees who are ill "
    "must inform their manager before 10:00 on the first day of absence. A medical certificate is "
    "required for sick leave longer than three consecutive calendar days. Employees receive full pay "
    "for up to 20 days of sick leave per year.",
    "5. Parental Leave\nBirth parents are entitled to 26 weeks of paid maternity leave. Partners are "
    "entitled to 4 weeks of paid paternity leave, to be taken within six months of the birth or "
    "adoption. Adoptive parents receive the same entitlements as birth parents.\n\n"
    "6. Unpaid Leave\nEmployees who have exhausted their annual leave may apply for up to 30 days of "
    "unpaid leave per year. Unpaid leave requires the written approval of the department head.",
]

EXPENSES_POLICY = [
    "Travel and Expenses Policy\n\n1. Scope\nThis policy covers business travel, meals and other "
    "expenses that employees incur on behalf of Northwind Systems Ltd.\n\n2. Submitting Claims\n"
    "Expense claims must be submitted in the finance system within 30 days of the expense, with an "
    "itemised receipt for every item above 25 euros. Claims submitted after 90 days are not "
    "reimbursed.",
    "3. Travel\nEconomy class is required for flights shorter than six hours; business class may be "
    "booked for longer flights with the approval of a director. Rail travel is preferred for "
    "journeys under four hours.\n\n4. Meals and Hotels\nThe daily meal allowance is 60 euros when "
    "travelling. Hotel rooms are limited to 180 euros per night in capital cities and 130 euros per "
    "night elsewhere. Alcohol is not reimbursed.",
]

SECURITY_POLICY = [
    "IT Security Policy\n\n1. Passwords\nPasswords must be at least 14 characters long and must not be "
    "reused across systems. Multi-factor authentication is mandatory for email, the VPN and all "
    "systems that hold customer data. Passwords must never be shared, including with IT staff.\n\n"
    "2. Devices\nCompany laptops must use full-disk encryption and lock automatically after five "
    "minutes of inactivity. Personal devices may access email only through the managed mobile app.",
    "3. Reporting Incidents\nSuspected phishing emails, lost devices and other security incidents "
    "must be reported to the security team at security@northwind.example within one hour of "
    "discovery. Do not attempt to investigate an incident yourself.\n\n4. Data Classification\n"
    "Customer data is classified as confidential. Confidential data may not be stored on USB "
    "drives or personal cloud storage.",
]

SERVICES_CONTRACT = [
    "MASTER SERVICES AGREEMENT\n\nThis Master Services Agreement is entered into on 1 March 2024 "
    "(the Effective Date) between Northwind Systems Ltd (the Customer) and Contoso Consulting GmbH "
    "(the Provider).\n\n1. Services\nThe Provider shall deliver the software maintenance and support "
    "services described in each Statement of Work.\n\n2. Term\nThis Agreement begins on the Effective "
    "Date and continues for an initial term of twenty-four (24) months. It renews automatically for "
    "successive twelve (12) month periods unless either party gives written notice of non-renewal at "
    "least ninety (90) days before the end of the then-current term.",
    "3. Fees and Payment\nThe Customer shall pay all undisputed invoices within thirty (30) days of "
    "receipt.\n\n4. Termination\nEither party may terminate this Agreement for convenience on sixty "
    "(60) days' written notice. Either party may terminate immediately if the other party commits a "
    "material breach that is not remedied within thirty (30) days of written notice.\n\n"
    "5. Limitation of Liability\nEach party's total liability under this Agreement shall not exceed "
    "the fees paid by the Customer in the twelve (12) months preceding the claim.",
    "6. Confidentiality\nEach party shall keep the other party's confidential information secret "
    "during the term and for three (3) years after it ends.\n\n7. Governing Law\nThis Agreement is "
    "governed by the laws of Ireland, and the courts of Dublin have exclusive jurisdiction.\n\n"
    "8. Assignment\nNeither party may assign this Agreement without the prior written consent of "
    "the other party, except to a successor in a merger or acquisition.",
]

DEMO_FILES: dict[str, tuple[str, str, list[str]]] = {
    "leave-policy.pdf": (POLICIES, "Leave Policy", LEAVE_POLICY),
    "travel-and-expenses-policy.pdf": (POLICIES, "Travel and Expenses Policy", EXPENSES_POLICY),
    "it-security-policy.pdf": (POLICIES, "IT Security Policy", SECURITY_POLICY),
    "master-services-agreement.pdf": (
        CONTRACTS,
        "Master Services Agreement - Contoso Consulting",
        SERVICES_CONTRACT,
    ),
}


def write_pdf(title: str, pages: Sequence[str]) -> bytes:
    pdf = FPDF()
    pdf.set_title(title)
    pdf.set_creation_date(datetime(2024, 1, 1, tzinfo=UTC))  # same bytes every time
    pdf.set_auto_page_break(auto=False)
    for text in pages:
        pdf.add_page()
        pdf.set_font("Helvetica", size=11)
        for paragraph in text.split("\n\n"):
            pdf.multi_cell(0, 5.5, paragraph)
            pdf.ln(3)
    return bytes(pdf.output())


def load_demo(desk: Desk) -> list[IngestReport]:
    """Write and ingest the demo PDFs; running it again changes nothing."""
    reports: list[IngestReport] = []
    for file_name, (collection, title, pages) in DEMO_FILES.items():
        upload = Upload(file_name, write_pdf(title, pages))
        reports.extend(desk.ingest([upload], collection))
    return reports
