"""Insights in the staff console: KPI snapshots (read-only, exported as CSV by an action),
customer values (read-only; both are written by the monthly task only) and surveys with their
figures."""

import csv

from django.contrib import admin
from django.http import HttpResponse
from django.utils.translation import gettext_lazy as _

from insights.models import KpiSnapshot, Survey
from insights.selectors import KPI_FIELDS, survey_figures
from insights.services.surveys import survey_create
from loyalty.admin import ConsoleAdmin, ReadOnlyAdmin
from members.models import MemberValue


@admin.register(KpiSnapshot)
class KpiSnapshotAdmin(ReadOnlyAdmin):
    list_display = ["month", "tier_code", "computed_at"]
    list_filter = ["tier_code"]
    date_hierarchy = "month"
    actions = ["export_csv"]

    @admin.action(description=_("Export the selected snapshots as CSV"))
    def export_csv(self, request, queryset) -> HttpResponse:
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="kpi-snapshots.csv"'
        writer = csv.writer(response)
        writer.writerow(["month", "tier", *KPI_FIELDS])
        for snapshot in queryset.order_by("month", "tier_code"):
            writer.writerow(
                [snapshot.month.isoformat(), snapshot.tier_code]
                + [
                    "" if snapshot.figures.get(key) is None else snapshot.figures[key]
                    for key in KPI_FIELDS
                ]
            )
        return response


@admin.register(MemberValue)
class MemberValueAdmin(ReadOnlyAdmin):
    list_display = ["member", "score", "churn_risk", "as_of", "refreshed_at"]
    list_filter = ["churn_risk", "as_of"]
    search_fields = ["member__customer_no"]
    list_select_related = ["member"]
    ordering = ["-score"]


@admin.register(Survey)
class SurveyAdmin(ConsoleAdmin):
    """Surveys are written and sent through the API's services; here staff read them and their
    figures."""

    list_display = ["question_en", "status", "segment", "sent_at", "closes_at"]
    list_filter = ["status"]
    search_fields = ["question_en", "question_zh_hans"]
    readonly_fields = ["status", "sent_at", "created_by", "figures"]
    fields = ["question_en", "question_zh_hans", "segment", "closes_at", *readonly_fields]

    @admin.display(description=_("figures"))
    def figures(self, survey: Survey) -> str:
        if survey.pk is None:
            return "-"
        f = survey_figures(survey=survey)
        return _("%(sent)s sent, %(answered)s answered; NPS %(nps)s, average score %(avg)s") % {
            "sent": f["sent"],
            "answered": f["answered"],
            "nps": f["nps"],
            "avg": f["score_avg"],
        }

    def save_model(self, request, obj, form, change) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        fields = {
            name: form.cleaned_data[name]
            for name in ["question_en", "question_zh_hans", "segment", "closes_at"]
        }
        obj.pk = survey_create(actor=request.user, fields=fields).pk

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
