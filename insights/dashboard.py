"""The console's home page (the admin index): the figures of ``templates/admin/index.html``.

Guarantees:

* **Permissions.** Each block is built only for a user who may view the models its figures
  come from (``request.user.has_perm``), so nothing of a block reaches the template of a user
  without them: members and retention need ``members.view_member``; the tier moves
  ``members.view_tierhistory``; points issued, redeemed, expired and the liability
  ``points.view_entry`` (the ledger); the inbox ``points.view_transaction``; attendance
  ``events.view_invitation`` and satisfaction ``events.view_feedback``; every monthly series
  also ``insights.view_kpisnapshot``. *Waiting for me* lists the pending adjustments and tier
  overrides the user holds the approve permission for, never their own requests (four eyes,
  as the services enforce).
* **Cost.** Monthly series come from the stored KPI snapshots (one statement for all of
  them); the live figures (members per tier now, the last evaluation's tier moves, the inbox,
  the approvals) are a few aggregate statements each. The number of statements does not grow
  with members, ledger entries or snapshots.
* **People's numbers.** Counts and points with thousand separators, money with the programme's
  currency (``ProgrammeSettings.currency``), rates as percentages; every label through gettext.
  Chart data is Chart.js's ``{"labels", "datasets"}`` as a JSON string (what unfold's chart
  components put in ``data-value``), decimals as strings: no float on the way.
* **Empty states.** Without snapshots, runs or requests each block says so in a sentence.
"""

import json
from decimal import Decimal
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils import formats, timezone
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from insights.selectors import (
    adjustments_awaiting,
    dashboard_inbox_figures,
    dashboard_kpi_months,
    dashboard_tier_migration,
    tier_overrides_awaiting,
)
from loyalty.selectors import programme_settings_get
from members.models import Tier
from members.selectors import tier_member_counts
from points.models import Transaction

NONE = "—"
PERCENT = Decimal("0.1")
# Series colours: the console's blue first, then colours that stay apart in print and for the
# common colour blindnesses.
PALETTE = ["#2563eb", "#f59e0b", "#10b981", "#64748b", "#7c3aed", "#dc2626", "#0891b2"]


# --- Formatting ------------------------------------------------------------------------


def _count(value: int | None) -> str:
    if value is None:
        return NONE
    return formats.number_format(value, 0, use_l10n=True, force_grouping=True)


def _signed(value: int) -> str:
    return ("+" if value > 0 else "\u2212") + _count(abs(value))


def _money(value: Decimal | None, currency: str) -> str:
    if value is None:
        return NONE
    return f"{currency} {formats.number_format(value, 2, use_l10n=True, force_grouping=True)}"


def _percent_value(rate: Decimal | None) -> Decimal | None:
    return None if rate is None else (rate * 100).quantize(PERCENT)


def _percent(rate: Decimal | None) -> str:
    value = _percent_value(rate)
    if value is None:
        return NONE
    return f"{formats.number_format(value, 1, use_l10n=True)}%"


def _score(value: Decimal | None) -> str:
    if value is None:
        return NONE
    return formats.number_format(value, 2, use_l10n=True)


def _month(day: Any) -> str:
    return formats.date_format(day, "YEAR_MONTH_FORMAT")


def _month_short(day: Any) -> str:
    # Translators: a date format (Django's "date" filter) for a month on a chart's axis.
    return formats.date_format(day, pgettext("chart axis month format", "M Y"))


def _datetime(moment: Any) -> str:
    return formats.date_format(timezone.localtime(moment), "SHORT_DATETIME_FORMAT")


def _url(name: str, *args: Any, query: str = "") -> str:
    """The console's address of ``name`` (with ``?query``), or "" where the console does not
    register that model: a card or row without a link rather than an error."""
    try:
        url = reverse(f"admin:{name}", args=args)
    except NoReverseMatch:
        return ""
    return f"{url}?{query}" if query else url


def _link(href: str, text: str) -> str:
    if not href:
        return text
    return format_html(
        '<a class="font-medium text-primary-600 whitespace-nowrap" href="{}">{}</a>', href, text
    )


def _json(value: Any) -> str:
    return json.dumps(value, cls=DjangoJSONEncoder)


def _chart_options(
    *,
    stacked: bool = False,
    y_title: str = "",
    y_max: int | None = None,
    y1_title: str = "",
    y1_min: int | None = None,
    y1_max: int | None = None,
) -> str:
    """Chart.js options (unfold replaces its defaults with these whole): a legend, readable
    axes, one tooltip for all series of a month."""
    scales: dict[str, Any] = {
        "x": {"stacked": stacked, "grid": {"display": False}},
        "y": {
            "stacked": stacked,
            "beginAtZero": True,
            "title": {"display": bool(y_title), "text": y_title},
            "grid": {"color": "rgba(148, 163, 184, 0.25)"},
        },
    }
    if y_max is not None:
        scales["y"]["max"] = y_max
    if y1_title:
        scales["y1"] = {
            "position": "right",
            "title": {"display": True, "text": y1_title},
            "grid": {"display": False},
        }
        if y1_min is not None:
            scales["y1"]["min"] = y1_min
        if y1_max is not None:
            scales["y1"]["max"] = y1_max
    return _json(
        {
            "animation": False,
            "responsive": True,
            "maintainAspectRatio": False,
            "interaction": {"mode": "index", "intersect": False},
            "plugins": {
                "legend": {
                    "display": True,
                    "position": "bottom",
                    "labels": {"usePointStyle": True, "boxWidth": 8, "boxHeight": 8},
                },
                "tooltip": {"enabled": True},
            },
            "scales": scales,
        }
    )


def _bar(label: str, data: list[Any], colour: str, **extra: Any) -> dict[str, Any]:
    return {
        "label": label,
        "data": data,
        "backgroundColor": colour,
        "borderColor": colour,
        "borderRadius": 3,
        "maxBarThickness": 28,
        **extra,
    }


def _line(label: str, data: list[Any], colour: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "line",
        "label": label,
        "data": data,
        "borderColor": colour,
        "backgroundColor": colour,
        "borderWidth": 2,
        "pointRadius": 3,
        "tension": 0.2,
        "spanGaps": True,
        **extra,
    }


def _chart(
    *, key: str, title: str, kind: str, labels: list[str], datasets: list[dict], **options: Any
) -> dict[str, Any]:
    return {
        "key": key,
        "title": title,
        "kind": kind,
        "data": _json({"labels": labels, "datasets": datasets}),
        "options": _chart_options(**options),
    }


# --- Blocks ----------------------------------------------------------------------------


class _Dashboard:
    """The blocks of one request, each built only when the user may see it."""

    def __init__(self, request: HttpRequest) -> None:
        self.user = request.user
        self.can = self.user.has_perm
        self.cards: list[dict[str, Any]] = []
        self.charts: list[dict[str, Any]] = []
        self.context: dict[str, Any] = {}
        self.kpis = self.can("insights.view_kpisnapshot")
        self.see_members = self.can("members.view_member")
        self.see_ledger = self.can("points.view_entry")
        self.see_attendance = self.can("events.view_invitation")
        self.see_satisfaction = self.can("events.view_feedback")
        self.months = dashboard_kpi_months() if self.kpis else []
        self.latest = self.months[-1] if self.months else None
        self.labels = [_month_short(entry["month"]) for entry in self.months]
        needs_tiers = self.see_members or self.can("members.view_tierhistory")
        self.tiers = list(Tier.objects.order_by("rank", "code")) if needs_tiers else []
        self.currency = programme_settings_get().currency if self.see_ledger else ""

    def series(self, key: str, *, percent: bool = False) -> list[Any]:
        values = [entry["figures"].get(key) for entry in self.months]
        return [_percent_value(value) for value in values] if percent else values

    def latest_figure(self, key: str) -> Any:
        return self.latest["figures"].get(key) if self.latest else None

    # Members ---------------------------------------------------------------------------

    def members(self) -> None:
        if not self.see_members:
            return
        counts = tier_member_counts()
        total = sum(counts.values())
        rows = []
        known = {tier.code for tier in self.tiers}
        for tier in self.tiers:
            if tier.code in counts or tier.active:
                rows.append((tier.name, counts.get(tier.code, 0)))
        rows += [(code, n) for code, n in sorted(counts.items()) if code not in known and code]
        if None in counts:
            rows.append((_("No tier configured"), counts[None]))  # type: ignore[index]
        share = {name: _percent(Decimal(n) / total if total else None) for name, n in rows}
        self.context["members_table"] = {
            "headers": [_("Tier"), _("Members"), _("Share")],
            "rows": [[name, _count(n), share[name]] for name, n in rows],
        }
        detail = ""
        if self.latest and self.kpis:
            detail = _("%(new)s joined in %(month)s") % {
                "new": _count(self.latest_figure("members_new")),
                "month": _month(self.latest["month"]),
            }
        self.cards.append(
            {
                "key": "members",
                "title": _("Members"),
                "value": _count(total),
                "detail": detail or _("Active or frozen memberships today"),
                "icon": "group",
                "href": _url("members_member_changelist"),
            }
        )
        if not self.kpis:
            return
        if self.latest:
            self.cards.append(
                {
                    "key": "retention",
                    "title": _("Retention"),
                    "value": _percent(self.latest_figure("retention_rate")),
                    "detail": _("Members at the start of %(month)s still members at its end")
                    % {"month": _month(self.latest["month"])},
                    "icon": "how_to_reg",
                }
            )
        if not self.months:
            return
        codes = [tier.code for tier in self.tiers]
        codes += sorted({c for e in self.months for c in e["by_tier"]} - set(codes))
        names = {tier.code: tier.name for tier in self.tiers}
        datasets = []
        for index, code in enumerate(codes):
            data = [e["by_tier"].get(code, {}).get("members_total") for e in self.months]
            if any(value for value in data):
                colour = PALETTE[index % len(PALETTE)]
                datasets.append(_bar(names.get(code, code), data, colour, stack="members"))
        self.charts.append(
            _chart(
                key="members_by_tier",
                title=_("Members per tier, month end"),
                kind="bar",
                labels=self.labels,
                datasets=datasets,
                stacked=True,
                y_title=_("Members"),
            )
        )
        self.charts.append(
            _chart(
                key="retention",
                title=_("Retention and growth per month"),
                kind="line",
                labels=self.labels,
                datasets=[
                    _line(
                        _("Retention (%)"), self.series("retention_rate", percent=True), PALETTE[0]
                    ),
                    _line(_("Growth (%)"), self.series("growth_rate", percent=True), PALETTE[2]),
                ],
                y_title="%",
            )
        )

    def tier_migration(self) -> None:
        if not self.can("members.view_tierhistory"):
            return
        migration = dashboard_tier_migration()
        if migration is None:
            self.context["migration"] = {"empty": True}
            return
        lowest = next((tier for tier in self.tiers if tier.active), None)
        moves: dict[tuple[int | None, int], int] = {}
        for (source, target), n in migration["moves"].items():
            source = source if source is not None else (lowest.pk if lowest else None)
            moves[(source, target)] = moves.get((source, target), 0) + n
        shown = [
            tier for tier in self.tiers if tier.active or any(tier.pk in pair for pair in moves)
        ]
        position = {tier.pk: index for index, tier in enumerate(shown)}
        rows = []
        for source in shown:
            cells: list[Any] = [format_html("<strong>{}</strong>", source.name)]
            for target in shown:
                n = moves.get((source.pk, target.pk), 0)
                if source.pk == target.pk:
                    cells.append(format_html('<span class="text-base-400">{}</span>', NONE))
                elif n == 0:
                    cells.append(format_html('<span class="text-base-300">{}</span>', "0"))
                else:
                    up = position[target.pk] > position[source.pk]
                    colour = (
                        "text-green-700 dark:text-green-400"
                        if up
                        else "text-red-700 dark:text-red-400"
                    )
                    cells.append(
                        format_html('<span class="font-semibold {}">{}</span>', colour, _count(n))
                    )
            rows.append(cells)
        run = migration["run"]
        self.context["migration"] = {
            "empty": False,
            "table": {
                "headers": [_("From → to"), *[tier.name for tier in shown]],
                "rows": rows,
            },
            "summary": _(
                "Evaluation as of %(as_of)s: %(up)s upgraded, %(down)s downgraded, "
                "%(same)s unchanged."
            )
            % {
                "as_of": formats.date_format(run.as_of, "DATE_FORMAT"),
                "up": _count(run.upgraded),
                "down": _count(run.downgraded),
                "same": _count(run.unchanged),
            },
            "href": _url("members_tierevaluationrun_change", run.pk)
            if self.can("members.view_tierevaluationrun")
            else "",
        }

    # Points ----------------------------------------------------------------------------

    def points(self) -> None:
        if not (self.see_ledger and self.kpis):
            return
        if self.latest:
            self.cards.append(
                {
                    "key": "liability",
                    "title": _("Points liability"),
                    "value": _money(self.latest_figure("points_liability"), self.currency),
                    "detail": _("Net of breakage %(net)s, end of %(month)s")
                    % {
                        "net": _money(self.latest_figure("points_liability_net"), self.currency),
                        "month": _month(self.latest["month"]),
                    },
                    "icon": "account_balance",
                }
            )
        if not self.months:
            return
        self.charts.append(
            _chart(
                key="points_flow",
                title=_("Points issued, redeemed and expired per month"),
                kind="bar",
                labels=self.labels,
                datasets=[
                    _bar(_("Issued"), self.series("points_issued"), PALETTE[0]),
                    _bar(_("Redeemed"), self.series("points_redeemed"), PALETTE[2]),
                    _bar(_("Expired"), self.series("points_expired"), PALETTE[3]),
                ],
                y_title=_("Points"),
            )
        )
        self.charts.append(
            _chart(
                key="liability",
                title=_("Points liability, month end (%(currency)s)") % {"currency": self.currency},
                kind="line",
                labels=self.labels,
                datasets=[
                    _line(_("Gross"), self.series("points_liability"), PALETTE[0]),
                    _line(_("Net of breakage"), self.series("points_liability_net"), PALETTE[1]),
                ],
                y_title=self.currency,
            )
        )

    def inbox(self) -> None:
        if not self.can("points.view_transaction"):
            return
        figures = dashboard_inbox_figures(now=timezone.now())
        waiting = figures["pending"] + figures["parked"]

        def listed(status: str) -> str:
            return _url("points_transaction_changelist", query=f"status__exact={status}")

        self.context["inbox"] = {
            "rows": [
                (_("Pending"), _count(figures["pending"]), listed(Transaction.Status.PENDING)),
                (
                    _("Waiting for the original"),
                    _count(figures["parked"]),
                    listed(Transaction.Status.PARKED),
                ),
                (_("Failed"), _count(figures["failed"]), listed(Transaction.Status.FAILED)),
                (_("Failed in the last 7 days"), _count(figures["failed_recent"]), ""),
            ],
            "oldest": _datetime(figures["oldest_waiting"]) if figures["oldest_waiting"] else "",
        }
        self.cards.append(
            {
                "key": "inbox",
                "title": _("Inbox backlog"),
                "value": _count(waiting),
                "detail": _("%(failed)s failed, %(recent)s in the last 7 days")
                % {"failed": _count(figures["failed"]), "recent": _count(figures["failed_recent"])},
                "icon": "inbox",
                "alert": "danger" if figures["failed"] else "",
                "href": listed(Transaction.Status.FAILED)
                if figures["failed"]
                else _url("points_transaction_changelist"),
            }
        )

    # Events ----------------------------------------------------------------------------

    def events(self) -> None:
        see_nps = self.see_satisfaction and self.can("insights.view_surveyresponse")
        if not (self.kpis and (self.see_attendance or self.see_satisfaction)):
            return
        if self.latest:
            month = _month(self.latest["month"])
            satisfaction = self.latest_figure("satisfaction_avg")
            if satisfaction is None:
                rated = _("No event ratings in %(month)s") % {"month": month}
            else:
                rated = _("Rated %(score)s of 5 in %(month)s") % {
                    "score": _score(satisfaction),
                    "month": month,
                }
            if self.see_attendance:
                card = {
                    "title": _("Event attendance"),
                    "value": _percent(self.latest_figure("event_attendance_rate")),
                    "detail": rated
                    if self.see_satisfaction
                    else _("Accepted invitations attended, %(month)s") % {"month": month},
                }
            else:
                card = {
                    "title": _("Event satisfaction"),
                    "value": _score(satisfaction),
                    "detail": rated,
                }
            self.cards.append({"key": "events", "icon": "event", **card})
        if not self.months:
            return
        if self.see_attendance:
            self.charts.append(
                _chart(
                    key="events",
                    title=_("Event acceptance and attendance per month"),
                    kind="bar",
                    labels=self.labels,
                    datasets=[
                        _bar(
                            _("Invitations accepted (%)"),
                            self.series("event_acceptance_rate", percent=True),
                            PALETTE[4],
                        ),
                        _bar(
                            _("Accepted who attended (%)"),
                            self.series("event_attendance_rate", percent=True),
                            PALETTE[0],
                        ),
                    ],
                    y_title="%",
                    y_max=100,
                )
            )
        if self.see_satisfaction:
            datasets = [_line(_("Event rating (1-5)"), self.series("satisfaction_avg"), PALETTE[1])]
            if see_nps:
                datasets.append(
                    _line(_("NPS (-100 to 100)"), self.series("nps"), PALETTE[0], yAxisID="y1")
                )
            self.charts.append(
                _chart(
                    key="satisfaction",
                    title=_("Satisfaction per month"),
                    kind="line",
                    labels=self.labels,
                    datasets=datasets,
                    y_title=_("Rating"),
                    y_max=5,
                    y1_title=_("NPS") if see_nps else "",
                    y1_min=-100,
                    y1_max=100,
                )
            )

    # Waiting for me --------------------------------------------------------------------

    def approvals(self) -> None:
        # Per kind of request: who may decide it, its reader, the admin's name for it, what
        # its row calls it, the change it asks for and when it was asked.
        kinds: list[tuple[Any, ...]] = [
            (
                "points.approve_adjustment",
                adjustments_awaiting,
                _("Adjustments (%(count)s)"),
                "points_adjustment",
                _("Points adjustment"),
                lambda adjustment: _("%(points)s points") % {"points": _signed(adjustment.points)},
                "created_at",
            ),
            (
                "members.approve_tieroverride",
                tier_overrides_awaiting,
                _("Tier overrides (%(count)s)"),
                "members_tieroverride",
                _("Tier override"),
                lambda override: (
                    _("%(tier)s until %(date)s")
                    % {
                        "tier": override.tier.name,
                        "date": formats.date_format(
                            timezone.localtime(override.expires_at), "DATE_FORMAT"
                        ),
                    }
                ),
                "requested_at",
            ),
        ]
        kinds = [kind for kind in kinds if self.can(kind[0])]
        if not kinds:
            return
        rows: list[list[Any]] = []
        total = 0
        links = []
        for _permission, awaiting, link_text, admin_name, label, change, asked_at in kinds:
            count, waiting = awaiting(user=self.user)
            total += count
            links.append(
                (
                    link_text % {"count": _count(count)},
                    _url(f"{admin_name}_changelist", query="status__exact=pending"),
                )
            )
            rows += [
                [
                    _link(_url(f"{admin_name}_change", asked.pk), label),
                    asked.member.customer_no,
                    change(asked),
                    asked.requested_by.get_username(),
                    _datetime(getattr(asked, asked_at)),
                ]
                for asked in waiting
            ]
        self.context["approvals"] = {
            "total": total,
            "table": {
                "headers": [
                    _("Request"),
                    _("Member"),
                    _("Change"),
                    _("Requested by"),
                    _("Requested at"),
                ],
                "rows": rows,
            },
            "links": links,
        }
        self.cards.append(
            {
                "key": "approvals",
                "title": _("Waiting for your approval"),
                "value": _count(total),
                "detail": _("Requests by others that you may decide"),
                "icon": "approval",
                "alert": "attention" if total else "",
                "href": "#approvals",
            }
        )

    def build(self) -> dict[str, Any]:
        self.approvals()
        self.members()
        self.points()
        self.events()
        self.inbox()
        self.tier_migration()
        order = ["members", "liability", "retention", "events", "inbox", "approvals"]
        self.cards.sort(key=lambda card: order.index(card["key"]))
        return {
            **self.context,
            "cards": self.cards,
            "charts": self.charts,
            "kpis": self.kpis,
            "no_snapshots": self.kpis and not self.months,
            "latest_month": _month(self.latest["month"]) if self.latest else "",
            "anything": bool(self.cards or self.charts or self.context),
        }


def dashboard_callback(request: HttpRequest, context: dict[str, Any]) -> dict[str, Any]:
    context["dashboard"] = _Dashboard(request).build()
    return context
