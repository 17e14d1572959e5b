"""Insights services, split by subdomain: :mod:`~insights.services.kpis` (the KPIs and their
monthly snapshots), :mod:`~insights.services.liability` (the points liability and breakage),
:mod:`~insights.services.value` (customer value and churn risk). Import from the module that
holds a function."""
