"""Events other apps react to. ``members`` cannot import the apps that depend on it (points,
tiers' consumers), so the end of a membership is announced here and ``points`` forfeits the
balance in the same database transaction."""

from django.dispatch import Signal

# Sent when a closure becomes final (the notice period is over), inside that transaction, with
# ``member`` and ``actor``. Closing alone sends nothing: the points stay through the notice.
member_closure_final = Signal()
