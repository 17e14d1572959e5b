"""Coupon codes imported in the console (django-import-export): a file of ``reward`` (the
reward's code), ``code`` and an optional ``expires_on`` (YYYY-MM-DD), added through
:func:`rewards.services.codes.codes_add` (its rules and its audit row, one per reward).

Guarantees: the preview writes nothing; each bad row is shown with its reason (an unknown
reward, one without a code pool, a malformed code or date, a code already in the pool or
repeated in the file) and then nothing of the file is added."""

import datetime as dt
from collections import OrderedDict, defaultdict
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext_lazy as _
from import_export import fields, resources
from import_export.results import Result, RowResult

from rewards.models import CouponCode, Reward
from rewards.services.codes import CODES_PER_UPLOAD, code_validate, codes_add

IMPORT_COLUMNS = ("reward", "code", "expires_on")


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value).strip()


class CouponCodeResource(resources.ModelResource):
    reward = fields.Field(attribute="reward__code", column_name="reward")

    class Meta:
        model = CouponCode
        fields = IMPORT_COLUMNS
        import_id_fields = ("reward", "code")
        report_skipped = True

    def get_diff_headers(self) -> list[str]:
        return list(IMPORT_COLUMNS)

    def import_data_inner(
        self,
        dataset,
        dry_run,
        raise_errors,
        using_transactions,
        collect_failed_rows,
        **kwargs,
    ) -> Result:
        result = self.get_result_class()()
        result.diff_headers = self.get_diff_headers()
        result.total_rows = len(dataset)
        headers = [str(header).strip() for header in dataset.headers or []]
        missing = [name for name in ("reward", "code") if name not in headers]
        if missing or len(dataset) > CODES_PER_UPLOAD:
            message = (
                _("The file has no column %(columns)s.") % {"columns": ", ".join(missing)}
                if missing
                else _("At most %(max)s codes per upload.") % {"max": CODES_PER_UPLOAD}
            )
            result.append_base_error(self.get_error_result_class()(ValidationError(message)))
            return result
        rows = [
            OrderedDict((name, _text(value)) for name, value in zip(headers, values, strict=False))
            for values in dataset
        ]
        rewards = {
            reward.code: reward
            for reward in Reward.objects.filter(code__in={row.get("reward", "") for row in rows})
        }
        pooled = set(
            CouponCode.objects.filter(
                reward__in=list(rewards.values()), code__in={row.get("code", "") for row in rows}
            ).values_list("reward__code", "code")
        )
        seen: set[tuple[str, str]] = set()
        batches: dict[str, list[tuple[str, dt.date | None]]] = defaultdict(list)
        for number, row in enumerate(rows, start=1):
            row_result = self.get_row_result_class()()
            row_result.row_values = row
            errors, code, expires_on = self._row_errors(row, rewards, pooled, seen)
            if errors:
                row_result.import_type = RowResult.IMPORT_TYPE_INVALID
                row_result.validation_error = ValidationError(errors)
                result.append_invalid_row(number, row, row_result.validation_error)
            else:
                row_result.import_type = RowResult.IMPORT_TYPE_NEW
                row_result.diff = [row.get(name, "") for name in IMPORT_COLUMNS]
                batches[row["reward"]].append((code, expires_on))
            result.increment_row_result_total(row_result)
            result.append_row_result(row_result)
        if not dry_run and not result.has_validation_errors():
            with transaction.atomic():
                for reward_code, codes in batches.items():
                    codes_add(
                        reward=rewards[reward_code],
                        codes=codes,
                        actor=kwargs.get("user"),
                        via="import",
                    )
        return result

    @staticmethod
    def _row_errors(
        row: dict[str, str],
        rewards: dict[str, Reward],
        pooled: set[tuple[str, str]],
        seen: set[tuple[str, str]],
    ) -> tuple[dict[str, list[str]], str, dt.date | None]:
        errors: dict[str, list[str]] = {}
        reward = rewards.get(row.get("reward", ""))
        if reward is None:
            errors["reward"] = [str(_("No reward with this code."))]
        elif not reward.uses_codes:
            errors["reward"] = [str(_("Only coupon and voucher rewards have a code pool."))]
        code = ""
        try:
            code = code_validate(row.get("code", ""))
        except ValidationError as error:
            errors["code"] = [str(message) for message in error.messages]
        expires_on = None
        if row.get("expires_on"):
            try:
                expires_on = dt.date.fromisoformat(row["expires_on"])
            except ValueError:
                errors["expires_on"] = [str(_("Not a date (YYYY-MM-DD)."))]
        key = (row.get("reward", ""), code)
        if code and "code" not in errors:
            if key in pooled:
                errors["code"] = [str(_("This code is in the reward's pool already."))]
            elif key in seen:
                errors["code"] = [str(_("This code is repeated in the file."))]
            seen.add(key)
        return errors, code, expires_on
