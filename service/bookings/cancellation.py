"""How much a cancelled booking gets back, by the property's cancellation policy.

Days before check-in are counted in the property's local dates. The share applies to the whole amount paid.
A host who cancels always refunds in full.

| policy   | full refund             | half refund             | otherwise |
| -------- | ----------------------- | ----------------------- | --------- |
| flexible | 1+ days before check-in | -                       | nothing   |
| moderate | 5+ days before          | 1-4 days before         | nothing   |
| strict   | 14+ days before         | 7-13 days before        | nothing   |
"""

from __future__ import annotations

import datetime as dt

# (minimum days before check-in, percent refunded), best first.
POLICIES: dict[str, tuple[tuple[int, int], ...]] = {
    "flexible": ((1, 100),),
    "moderate": ((5, 100), (1, 50)),
    "strict": ((14, 100), (7, 50)),
}


def refund_percent(policy: str, cancelled_by: str, today: dt.date, check_in: dt.date) -> int:
    if cancelled_by == "host":
        return 100
    days_before = (check_in - today).days
    for min_days, percent in POLICIES[policy]:
        if days_before >= min_days:
            return percent
    return 0


def refund_due(paid: int, policy: str, cancelled_by: str, today: dt.date, check_in: dt.date) -> int:
    """Minor units to give back; rounds in the guest's favour."""
    return -(-paid * refund_percent(policy, cancelled_by, today, check_in) // 100)
