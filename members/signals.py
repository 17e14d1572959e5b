"""Events other apps react to. ``members`` cannot import the apps that depend on it (points,
tiers' consumers), so a closed membership is announced here and ``points`` forfeits the balance
in the same database transaction."""

from django.dispatch import Signal

# Sent inside the closing transaction with ``member`` and ``actor``.
member_closed = Signal()
