"""Coupon code pools: codes staff upload (a list, or a CSV file) or generate from a pattern.

Each code is stored once per reward (the unique constraint refuses a duplicate, which is
counted, never an error for the whole upload); an upload is one transaction and one audit row.
A redemption takes codes with ``FOR UPDATE SKIP LOCKED`` (``rewards.services.redemptions``);
when the unused codes fall below the reward's threshold, marketing gets a staff notice, once
per pool size (a refill that falls low again is told again).
"""

import csv
import datetime as dt
import io
import secrets
import string
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from loyalty import roles
from loyalty.models import AuditAction, StaffNotice
from loyalty.services import audit_log_record, staff_notice_send
from loyalty.timeutils import business_today
from rewards.models import CouponCode, Reward
from rewards.selectors import free_codes_q

CODE_MAX_LENGTH = CouponCode._meta.get_field("code").max_length or 64
CODES_PER_UPLOAD = 10_000
# Letters and digits that cannot be misread for one another (no 0/O, 1/I/L).
DEFAULT_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"


@dataclass(frozen=True)
class CodesAdded:
    added: int
    duplicates: int


def code_validate(code: Any) -> str:
    """A code as stored: printable, no spaces, 4 to 64 characters."""
    if not isinstance(code, str):
        raise ValidationError(_("A code is text."), code="invalid")
    code = code.strip()
    if not 4 <= len(code) <= CODE_MAX_LENGTH or not code.isprintable() or " " in code:
        raise ValidationError(
            _("A code has 4 to %(max)s printable characters and no spaces.")
            % {"max": CODE_MAX_LENGTH},
            code="invalid_code",
        )
    return code


def codes_from_csv(text: str) -> list[tuple[str, dt.date | None]]:
    """The codes of a CSV file: a ``code`` column and an optional ``expires_on``
    (YYYY-MM-DD). Raises ``ValidationError`` naming every bad line; nothing is kept then."""
    try:
        return _csv_rows(text)
    except csv.Error as error:  # a field over the csv module's limit, a NUL byte...
        raise ValidationError(
            _("The CSV file cannot be read: %(error)s") % {"error": error}
        ) from error


def _csv_rows(text: str) -> list[tuple[str, dt.date | None]]:
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    if not reader.fieldnames or "code" not in [name.strip() for name in reader.fieldnames]:
        raise ValidationError(_("The CSV file needs a header line with a 'code' column."))
    rows: list[tuple[str, dt.date | None]] = []
    errors: list[str] = []
    for line, raw in enumerate(reader, start=2):
        if None in raw:  # more values than the header names
            errors.append(_("line %(line)s: more values than columns") % {"line": line})
            continue
        row = {key.strip(): (value or "").strip() for key, value in raw.items()}
        try:
            code = code_validate(row.get("code", ""))
            expires = row.get("expires_on") or None
            rows.append((code, dt.date.fromisoformat(expires) if expires else None))
        except ValidationError as error:
            errors.append(
                _("line %(line)s: %(error)s") % {"line": line, "error": error.messages[0]}
            )
        except ValueError:
            errors.append(_("line %(line)s: expires_on is not a date") % {"line": line})
    if errors:
        raise ValidationError(errors[:20])
    if len(rows) > CODES_PER_UPLOAD:
        raise ValidationError(_("At most %(max)s codes per upload.") % {"max": CODES_PER_UPLOAD})
    return rows


def _codes_insert(reward: Reward, rows: list[tuple[str, dt.date | None]]) -> int:
    table = connection.ops.quote_name(CouponCode._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (reward_id, code, expires_on, created_at) "  # noqa: S608
            "SELECT %s, code, expires_on, %s FROM unnest(%s::text[], %s::date[]) "
            "AS v(code, expires_on) ON CONFLICT (reward_id, code) DO NOTHING",
            [reward.pk, timezone.now(), [code for code, _ in rows], [day for _, day in rows]],
        )
        return cursor.rowcount


def _check_pool(reward: Reward) -> None:
    if not reward.uses_codes:
        raise ValidationError(_("Only coupon and voucher rewards have a code pool."))


@transaction.atomic
def codes_add(
    *, reward: Reward, codes: list[tuple[str, dt.date | None]], actor: Any, via: str = "api"
) -> CodesAdded:
    """Add ``codes`` (``(code, expires_on)``, already validated) to the reward's pool; codes it
    holds already, or repeated in ``codes``, are counted as duplicates."""
    _check_pool(reward)
    if len(codes) > CODES_PER_UPLOAD:
        raise ValidationError(_("At most %(max)s codes per upload.") % {"max": CODES_PER_UPLOAD})
    added = _codes_insert(reward, codes)
    result = CodesAdded(added=added, duplicates=len(codes) - added)
    audit_log_record(
        actor=actor,
        action=AuditAction.REWARD_CODES_ADD,
        target=reward,
        after={"added": result.added, "duplicates": result.duplicates, "via": via},
    )
    return result


@transaction.atomic
def codes_generate(
    *,
    reward: Reward,
    count: int,
    prefix: str = "",
    length: int = 10,
    alphabet: str = DEFAULT_ALPHABET,
    expires_on: dt.date | None = None,
    actor: Any,
) -> CodesAdded:
    """``count`` new random codes ``prefix`` + ``length`` characters of ``alphabet`` (drawn
    with :mod:`secrets`: a code cannot be guessed from another). A collision with a stored
    code is drawn again; a pattern with too few combinations left is refused."""
    _check_pool(reward)
    if not 1 <= count <= CODES_PER_UPLOAD:
        raise ValidationError(_("Between 1 and %(max)s codes.") % {"max": CODES_PER_UPLOAD})
    alphabet = "".join(dict.fromkeys(alphabet))
    if len(alphabet) < 2 or any(
        char not in string.printable or char.isspace() for char in alphabet
    ):
        raise ValidationError(_("The alphabet needs at least two printable characters."))
    code_validate(prefix + alphabet[0] * length)
    if len(alphabet) ** length < count * 100:
        raise ValidationError(_("This pattern has too few combinations for so many codes."))
    added = 0
    for _attempt in range(5):
        wanted = count - added
        draw = {
            prefix + "".join(secrets.choice(alphabet) for _ in range(length)) for _ in range(wanted)
        }
        added += _codes_insert(reward, [(code, expires_on) for code in draw])
        if added == count:
            break
    else:  # pragma: no cover - needs five collisions in a row in a space 100 times the count
        raise ValidationError(_("Could not draw enough distinct codes; use a longer pattern."))
    audit_log_record(
        actor=actor,
        action=AuditAction.REWARD_CODES_ADD,
        target=reward,
        after={"added": added, "duplicates": 0, "via": "generate", "prefix": prefix},
    )
    return CodesAdded(added=added, duplicates=0)


def codes_free(*, reward: Reward, up_to: int | None = None) -> int:
    """Unused codes of the reward that have not expired (counting no further than ``up_to``)."""
    free = CouponCode.objects.filter(free_codes_q(today=business_today()), reward=reward).order_by()
    if up_to is not None:
        return len(free.values_list("pk", flat=True)[:up_to])
    return free.count()


def codes_low_notify(*, reward: Reward) -> StaffNotice | None:
    """Tell marketing when the reward's unused codes are below its threshold (once per pool
    size)."""
    free = codes_free(reward=reward, up_to=reward.low_codes_threshold)
    if free >= reward.low_codes_threshold:
        return None
    pool = CouponCode.objects.filter(reward=reward).count()
    return staff_notice_send(
        kind=StaffNotice.Kind.CODES_LOW,
        role=roles.MARKETING,
        title=_("%(reward)s: %(free)s coupon codes left"),
        body=_(
            "The reward %(reward)s (%(code)s) has %(free)s unused coupon codes, fewer than its "
            "threshold of %(threshold)s. Upload or generate more codes."
        ),
        dedupe_key=f"codes-low:{reward.pk}:{pool}",
        data={
            "reward": reward.name_en,
            "code": reward.code,
            "free": free,
            "threshold": reward.low_codes_threshold,
        },
    )
