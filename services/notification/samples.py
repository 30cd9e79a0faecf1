"""Sample data for every email kind: what the preview command shows and what the template test
renders in every language (a template that needs a variable the sample lacks fails the test)."""

from __future__ import annotations

from typing import Any

SAMPLES: dict[str, dict[str, Any]] = {
    "quote": {
        "product_name": "AutoCAD LT",
        "quote_number": "Q-2026-000123",
        "expires_on": "2027-02-28",
        "total": "1557.00",
        "currency": "USD",
        "lines": [
            {
                "subscription_id": "SUB-1001",
                "product_name": "AutoCAD LT",
                "product_code": "ACDLT",
                "term": "three_year",
                "seats": 1,
                "unit_price": "1179.00",
                "discount": "0.00",
                "amount": "1179.00",
            },
            {
                "subscription_id": "SUB-1002",
                "product_name": "AutoCAD LT",
                "product_code": "ACDLT",
                "term": "annual",
                "seats": 1,
                "unit_price": "420.00",
                "discount": "42.00",
                "amount": "378.00",
            },
        ],
        "promotions": [{"promotion_code": "SPRING10", "percent_off": "10"}],
        "accept_link": "https://account.example.com/quotes/Q-2026-000123",
    },
    "order_confirmation": {
        "order_id": "ORD-2026-0042",
        "total": "1680.00",
        "currency": "EUR",
        "items": [
            {
                "subscription_id": "SUB-1001",
                "product_name": "AutoCAD LT",
                "term": "annual",
                "seats": 3,
                "renewal_date": "2027-03-31",
            },
            {
                "subscription_id": "SUB-1002",
                "product_name": "AutoCAD LT",
                "term": "three_year",
                "seats": 1,
                "renewal_date": "2029-03-31",
            },
        ],
    },
    "renewal_reminder": {
        "product_name": "AutoCAD LT",
        "subscription_id": "SUB-1001",
        "renewal_date": "2027-03-31",
        "days_before": 30,
        "option": "manual",
        "payment_method": "card",
        "pay_link": "https://account.example.com/renew/SUB-1001",
        "grace_ends": "2027-05-15",
        "amount": "1179.00",
        "currency": "USD",
    },
    "payment_failed": {
        "product_name": "AutoCAD LT",
        "subscription_id": "SUB-1001",
        "order_id": "ORD-2026-0042",
        "amount": "420.00",
        "currency": "EUR",
        "reason": "card declined",
        "next_retry_on": "2027-04-03",
        "fix_link": "https://account.example.com/billing",
    },
    "awaiting_manual_payment": {
        "product_name": "AutoCAD LT",
        "order_id": "ORD-2026-0042",
        "amount": "52000",
        "currency": "JPY",
        "payment_method": "convenience_store",
        "payment_reference": "SIM-7F3A9C",
        "pay_by": "2027-04-14",
    },
    "lapsed": {
        "product_name": "AutoCAD LT",
        "subscription_id": "SUB-1001",
        "renewal_date": "2027-03-31",
        "grace_ends": "2027-05-15",
        "renew_link": "https://account.example.com/renew/SUB-1001",
    },
    "expired": {
        "product_name": "AutoCAD LT",
        "subscription_id": "SUB-1001",
        "expired_on": "2027-05-16",
        "new_purchase_price": "1310.00",
        "currency": "USD",
        "buy_link": "https://store.example.com/autocad-lt",
    },
    "auto_renew_changed": {
        "product_name": "AutoCAD LT",
        "subscription_id": "SUB-1001",
        "enabled": False,
        "renewal_date": "2027-03-31",
    },
    "seats_added": {
        "product_name": "AutoCAD LT",
        "subscription_id": "SUB-1001",
        "seats_added": 2,
        "seats": 5,
        "prorated_total": "203.84",
        "currency": "USD",
        "order_id": "ORD-2026-0043",
    },
    "renewal_terms_changed": {
        "product_name": "AutoCAD LT",
        "subscription_id": "SUB-1001",
        "term_code": "three_year",
        "seats": 2,
        "effective_on": "2027-03-31",
    },
}
