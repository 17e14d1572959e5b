"""The RSVP race through the API: each member's request in its own thread, client and
connection, all seen waiting on the event's capacity row before it is released."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, transaction
from rest_framework.test import APIClient

from events.models import Event, Invitation
from events.services.rsvp import seats_taken_recount
from members.authentication import member_token_issue
from tests.events.test_rsvp import _event, _invite
from tests.factories import lock_queue

pytestmark = pytest.mark.django_db(transaction=True)
IN_FLIGHT = 40


def _answer(token: str, invitation_id, seats: int):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    try:
        return client.post(
            f"/api/v1/me/invitations/{invitation_id}/rsvp/",
            {"response": "accept", "seats": seats},
            format="json",
        )
    finally:
        connection.close()


def test_60_members_accepting_20_seats_with_companions_at_once_over_the_api():
    event = _event(capacity=20, max_seats=2)
    invitations = _invite(event, 60)
    tokens = {i.pk: str(member_token_issue(member=i.member).access_token) for i in invitations}
    with ThreadPoolExecutor(max_workers=IN_FLIGHT) as pool:
        with transaction.atomic():
            Event.objects.select_for_update().get(pk=event.pk)
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                holder = cursor.fetchone()[0]
            futures = [
                pool.submit(_answer, tokens[i.pk], i.pk, 1 + n % 2)
                for n, i in enumerate(invitations)
            ]
            front, behind = lock_queue(holder=holder, waiters=IN_FLIGHT, timeout=60)
        responses = [future.result(timeout=120) for future in futures]
    assert len(front | behind) == IN_FLIGHT
    assert {response.status_code for response in responses} == {200}
    statuses = [response.json()["status"] for response in responses]
    assert set(statuses) == {"accepted", "waitlisted"}
    event.refresh_from_db()
    assert event.seats_taken == seats_taken_recount(event=event)
    assert 19 <= event.seats_taken <= 20  # a party of two never splits across the last seat
    accepted = Invitation.objects.filter(event=event, status="accepted")
    assert sum(accepted.values_list("seats", flat=True)) == event.seats_taken
