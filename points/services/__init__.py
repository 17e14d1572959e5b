"""Points services, split by subdomain. The public ledger API for other apps:
:func:`points.services.ledger.points_credit` and :func:`points.services.ledger.points_debit`."""
