"""Rewards in the admin: the catalogue is saved through ``rewards.services.catalogue`` (validated,
audited, a stock change on its own audit row), code pools are filled by a CSV upload or a
pattern through ``rewards.services.codes``, and redemptions are only read here, fulfilled or
cancelled through ``rewards.services.redemptions`` by the actions of the staff allowed to.

A reward's form sends the service only the fields staff changed. The stock is the one field
redemptions change meanwhile: the form carries the stock it showed, the row is locked while the
form is validated and saved, and a stock edit made on a value redemptions have since moved is
refused (shown again with the current value), so a redemption's decrement is never undone.
"""

import csv
import io
import logging
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from unfold.widgets import (
    UnfoldAdminFileFieldWidget,
    UnfoldAdminIntegerFieldWidget,
    UnfoldAdminSingleDateWidget,
    UnfoldAdminTextareaWidget,
    UnfoldAdminTextInputWidget,
)

from loyalty.admin import ConsoleAdmin, ConsoleImportMixin, ReadOnlyAdmin
from loyalty.errors import LoyaltyError
from loyalty.timeutils import business_today
from members.models import Tier
from rewards.models import BudgetMonth, CouponCode, Redemption, Reward
from rewards.resources import CouponCodeResource
from rewards.selectors import free_codes_q
from rewards.services.catalogue import reward_create, reward_update
from rewards.services.codes import CODES_PER_UPLOAD, codes_add, codes_from_csv, codes_generate
from rewards.services.redemptions import redemption_cancel, redemption_fulfil

logger = logging.getLogger(__name__)

# The largest CSV file of codes accepted (10,000 codes of 64 characters and a date fit easily).
CSV_MAX_BYTES = 2 * 1024 * 1024


def _tier_choices() -> list[tuple[str, str]]:
    return [(tier.code, f"{tier.code} {tier.name}") for tier in Tier.objects.order_by("rank")]


class RewardForm(forms.ModelForm):
    eligible_tiers = forms.MultipleChoiceField(
        label=_("eligible tiers"),
        choices=_tier_choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("None ticked: every tier."),
    )
    change_reason = forms.CharField(
        label=_("reason for the change"),
        required=False,
        max_length=500,
        help_text=_("Recorded in the audit log; required when the stock changes."),
    )

    class Meta:
        model = Reward
        fields = [
            "code",
            "category",
            "name_en",
            "name_zh_hans",
            "description_en",
            "description_zh_hans",
            "image",
            "active",
            "position",
            "points_price",
            "cash_price",
            "currency",
            "stock",
            "valid_from",
            "valid_to",
            "eligible_tiers",
            "limit_per_member",
            "limit_period",
            "monthly_points_budget",
            "low_codes_threshold",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "stock" in self.fields:
            # The form posts back the stock it showed: changed_data then says whether staff
            # edited it, not whether redemptions moved it since the form was opened.
            self.fields["stock"].show_hidden_initial = True

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.instance._state.adding or "stock" not in self.changed_data:
            return cleaned
        shown = self.fields["stock"].to_python(self.data.get(self["stock"].html_initial_name))
        # The instance was read under the row's lock (RewardAdmin.get_object): its stock is the
        # one the save will change.
        if shown != self.instance.stock:
            # Shown again, the form carries the current stock: saved again, it goes through.
            if isinstance(self.data, QueryDict):
                data = self.data.copy()
                data[self["stock"].html_initial_name] = (
                    "" if self.instance.stock is None else str(self.instance.stock)
                )
                self.data = data
            self.add_error(
                "stock",
                _(
                    "Redemptions changed the stock from %(shown)s to %(now)s since this form "
                    "was opened. Check the new stock and save again."
                )
                % {"shown": _stock_text(shown), "now": _stock_text(self.instance.stock)},
            )
        elif not cleaned.get("change_reason"):
            self.add_error("change_reason", _("Say why the stock changes."))
        return cleaned


def _stock_text(stock: int | None) -> str:
    return str(_("unlimited")) if stock is None else str(stock)


class CodesUploadForm(forms.Form):
    file = forms.FileField(
        label=_("CSV file"),
        widget=UnfoldAdminFileFieldWidget,
        help_text=_(
            "UTF-8, a header line with a 'code' column and an optional 'expires_on' column "
            "(YYYY-MM-DD); at most %(max)s codes."
        )
        % {"max": CODES_PER_UPLOAD},
    )

    def clean_file(self) -> str:
        upload = self.cleaned_data["file"]
        if upload.size > CSV_MAX_BYTES:
            raise ValidationError(_("The file is too large."))
        try:
            text = upload.read().decode("utf-8")
        except UnicodeDecodeError as error:
            raise ValidationError(_("The CSV file is not UTF-8.")) from error
        # A line with more values than the header has columns is refused here, numbered as
        # codes_from_csv numbers lines (blank ones skipped): that function does not expect one.
        try:
            rows = [row for row in csv.reader(io.StringIO(text.lstrip("\ufeff"))) if row]
        except csv.Error as error:
            raise ValidationError(_("The file is not a CSV file.")) from error
        errors = [
            _("line %(line)s: more values than the header has columns") % {"line": line}
            for line, row in enumerate(rows[1:], start=2)
            if len(row) > len(rows[0])
        ]
        if errors:
            raise ValidationError(errors[:20])
        return text


class CodesGenerateForm(forms.Form):
    count = forms.IntegerField(
        label=_("how many"),
        min_value=1,
        max_value=CODES_PER_UPLOAD,
        widget=UnfoldAdminIntegerFieldWidget,
    )
    code_prefix = forms.CharField(
        label=_("prefix"), max_length=20, required=False, widget=UnfoldAdminTextInputWidget
    )
    length = forms.IntegerField(
        label=_("random characters"),
        widget=UnfoldAdminIntegerFieldWidget,
        min_value=4,
        max_value=32,
        initial=10,
        help_text=_("After the prefix; letters and digits that cannot be misread."),
    )
    expires_on = forms.DateField(
        label=_("expires on"), required=False, widget=UnfoldAdminSingleDateWidget
    )


@admin.register(Reward)
class RewardAdmin(ConsoleAdmin):
    form = RewardForm
    list_display = [
        "code",
        "name",
        "category",
        "points_price",
        "cash_price",
        "stock",
        "codes_free",
        "active",
        "valid_from",
        "valid_to",
    ]
    list_filter = ["category", "active"]
    search_fields = ["code", "name_en", "name_zh_hans"]
    readonly_fields = ["code_pool", "created_at", "updated_at"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "code",
                    "category",
                    "name_en",
                    "name_zh_hans",
                    "description_en",
                    "description_zh_hans",
                    "image",
                    "active",
                    "position",
                ]
            },
        ),
        (_("Price"), {"fields": ["points_price", "cash_price", "currency"]}),
        (_("Stock"), {"fields": ["stock", "change_reason"]}),
        (
            _("Who may redeem it, and when"),
            {
                "fields": [
                    "valid_from",
                    "valid_to",
                    "eligible_tiers",
                    "limit_per_member",
                    "limit_period",
                    "monthly_points_budget",
                ]
            },
        ),
        (_("Coupon codes"), {"fields": ["low_codes_threshold", "code_pool"]}),
        (_("Record"), {"fields": ["created_at", "updated_at"]}),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Reward]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                free_codes=Count(
                    "codes", filter=free_codes_q(today=business_today(), prefix="codes__")
                ),
                given_codes=Count("codes", filter=Q(codes__redemption__isnull=False)),
            )
        )

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None):
        """On a save (the admin runs it in a transaction) the reward is read under its row's
        lock, held to the commit: the form's stock check and the update see the same stock."""
        if request.method == "POST" and transaction.get_connection().in_atomic_block:
            model = self.model
            field = model._meta.pk if from_field is None else model._meta.get_field(from_field)
            try:
                value = field.to_python(object_id)
            except ValidationError:
                return None
            return Reward.objects.select_for_update().filter(**{field.name: value}).first()
        return super().get_object(request, object_id, from_field)

    def get_readonly_fields(self, request: HttpRequest, obj: Reward | None = None):
        # Redemptions, the API and the demo name a reward by its code: it never changes.
        fields = list(super().get_readonly_fields(request, obj))
        return [*fields, "code"] if obj else fields

    def has_delete_permission(self, request: HttpRequest, obj: Reward | None = None) -> bool:
        # Deactivate instead: redemptions name the reward.
        return False

    @admin.display(description=_("name"))
    def name(self, reward: Reward) -> str:
        return reward.name

    @admin.display(description=_("codes free / given"))
    def codes_free(self, reward: Reward) -> str:
        if not reward.uses_codes:
            return "-"
        free = getattr(reward, "free_codes", None)
        given = getattr(reward, "given_codes", None)
        if free is None or given is None:
            free = reward.codes.filter(free_codes_q(today=business_today())).count()
            given = reward.codes.filter(redemption__isnull=False).count()
        return f"{free} / {given}"

    @admin.display(description=_("code pool"))
    def code_pool(self, reward: Reward) -> str:
        if reward._state.adding or not reward.uses_codes:
            return str(_("Only coupon and voucher rewards have a code pool."))
        codes = reverse("admin:rewards_couponcode_changelist")
        return format_html(
            '{} · <a href="{}?reward__id__exact={}">{}</a> · <a href="{}">{}</a> · '
            '<a href="{}">{}</a>',
            _("%(free)s free, %(given)s given") % self._pool_counts(reward),
            codes,
            reward.pk,
            _("See the codes"),
            reverse("admin:rewards_reward_codes_upload", args=[reward.pk]),
            _("Upload coupon codes (CSV)"),
            reverse("admin:rewards_reward_codes_generate", args=[reward.pk]),
            _("Generate codes"),
        )

    @staticmethod
    def _pool_counts(reward: Reward) -> dict[str, int]:
        counts = reward.codes.aggregate(
            free=Count("id", filter=free_codes_q(today=business_today())),
            given=Count("id", filter=Q(redemption__isnull=False)),
        )
        return {"free": counts["free"], "given": counts["given"]}

    def save_model(self, request: HttpRequest, obj: Reward, form: RewardForm, change: bool) -> None:
        """Through the catalogue service: a new reward with every field of the form, a change
        with only those staff changed (never the stock they did not touch)."""
        names = [field.name for field in Reward._meta.concrete_fields if field.name in form.fields]
        if not change:
            created = reward_create(
                actor=request.user, fields={name: getattr(obj, name) for name in names}
            )
            obj.pk = created.pk
            obj.image = created.image
            obj._state.adding = False
            obj._state.db = created._state.db
            return
        changes = {name: getattr(obj, name) for name in form.changed_data if name in names}
        stored = reward_update(
            reward=obj,
            actor=request.user,
            changes=changes,
            reason=form.cleaned_data.get("change_reason", ""),
        )
        obj.stock = stored.stock

    # Coupon code pools: a CSV upload or a generated batch, each through the codes service.

    def get_urls(self):
        return [
            path(
                "<path:object_id>/codes/upload/",
                self.admin_site.admin_view(self.codes_upload_view),
                name="rewards_reward_codes_upload",
            ),
            path(
                "<path:object_id>/codes/generate/",
                self.admin_site.admin_view(self.codes_generate_view),
                name="rewards_reward_codes_generate",
            ),
            *super().get_urls(),
        ]

    def _pool_reward(self, request: HttpRequest, object_id: str) -> Reward:
        if not request.user.has_perm("rewards.add_couponcode"):
            raise PermissionDenied
        return get_object_or_404(Reward, pk=self.get_object_pk(object_id))

    def get_object_pk(self, object_id: str) -> Any:
        try:
            return Reward._meta.pk.to_python(object_id)  # type: ignore[union-attr]
        except ValidationError:
            return None

    def _codes_page(
        self, request: HttpRequest, reward: Reward, form: forms.Form, title: Any, upload: bool
    ) -> HttpResponse:
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": reward,
            "title": title,
            "form": form,
            "upload": upload,
            "pool": self._pool_counts(reward),
        }
        return TemplateResponse(request, "admin/rewards/reward/codes_form.html", context)

    def _back_to(self, reward: Reward) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:rewards_reward_change", args=[reward.pk]))

    def codes_upload_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        reward = self._pool_reward(request, object_id)
        form = CodesUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            try:
                rows = codes_from_csv(form.cleaned_data["file"])
                result = codes_add(reward=reward, codes=rows, actor=request.user, via="csv")
            except ValidationError as error:
                for message in error.messages:
                    form.add_error(None, message)
            else:
                self.message_user(
                    request,
                    _("%(added)s codes added, %(duplicates)s already in the pool or repeated.")
                    % {"added": result.added, "duplicates": result.duplicates},
                    messages.SUCCESS,
                )
                return self._back_to(reward)
        return self._codes_page(request, reward, form, _("Upload coupon codes (CSV)"), True)

    def codes_generate_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The pattern, then a confirmation page saying what will be generated; only a POST
        with ``confirm=yes`` generates."""
        reward = self._pool_reward(request, object_id)
        form = CodesGenerateForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            confirmed = request.POST.get("confirm") == "yes"
            data = form.cleaned_data
            try:
                # Unconfirmed, the service runs and is rolled back: the page then says what
                # it would do, or why it would refuse, by the service's own rules.
                with transaction.atomic():
                    result = codes_generate(
                        reward=reward,
                        actor=request.user,
                        count=data["count"],
                        prefix=data["code_prefix"],
                        length=data["length"],
                        expires_on=data["expires_on"],
                    )
                    if not confirmed:
                        transaction.set_rollback(True)
            except ValidationError as error:
                for message in error.messages:
                    form.add_error(None, message)
            else:
                if not confirmed:
                    return self._generate_confirm_page(request, reward, form)
                self.message_user(
                    request,
                    _("%(added)s codes generated.") % {"added": result.added},
                    messages.SUCCESS,
                )
                return self._back_to(reward)
        return self._codes_page(request, reward, form, _("Generate codes"), False)

    def _generate_confirm_page(
        self, request: HttpRequest, reward: Reward, form: forms.Form
    ) -> HttpResponse:
        data = form.cleaned_data
        example = (data["code_prefix"] or "") + "X" * data["length"]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": reward,
            "title": _("Generate codes"),
            "form": form,
            "pool": self._pool_counts(reward),
            "summary": _(
                "%(count)s new random codes like %(example)s are added to the pool of "
                "%(reward)s, %(expiry)s. Codes cannot be deleted once members may redeem them."
            )
            % {
                "count": data["count"],
                "example": example,
                "reward": reward.code,
                "expiry": (
                    _("expiring on %(date)s") % {"date": data["expires_on"]}
                    if data["expires_on"]
                    else _("with no expiry date")
                ),
            },
        }
        return TemplateResponse(request, "admin/rewards/reward/codes_confirm.html", context)


class CodeStateFilter(admin.SimpleListFilter):
    title = _("state")
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("free", _("Free")), ("given", _("Given"))]

    def queryset(self, request, queryset):
        if self.value() == "free":
            return queryset.filter(redemption__isnull=True)
        if self.value() == "given":
            return queryset.filter(redemption__isnull=False)
        return queryset


@admin.register(CouponCode)
class CouponCodeAdmin(ConsoleImportMixin, ReadOnlyAdmin):
    """Codes are secrets a member redeems: only staff with ``rewards.view_couponcode`` see
    them (the admin's own permission check). Staff with ``rewards.add_couponcode`` import a
    file of codes (``reward``, ``code``, ``expires_on``), previewed row by row and added through
    the codes service (:mod:`rewards.resources`)."""

    resource_classes = [CouponCodeResource]
    skip_admin_log = True  # the codes service writes the audit row

    list_display = ["code", "reward", "expires_on", "state", "issued_at", "created_at"]
    list_filter = [CodeStateFilter, "reward"]
    search_fields = ["code"]
    list_select_related = ["reward"]
    show_full_result_count = False

    @admin.display(description=_("state"))
    def state(self, code: CouponCode) -> str:
        return str(_("Given")) if code.redemption_id else str(_("Free"))


class CancelForm(forms.Form):
    reason = forms.CharField(
        label=_("reason"),
        max_length=500,
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 3}),
        help_text=_("Recorded with the redemption and in the audit log."),
    )


@admin.register(Redemption)
class RedemptionAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "customer_no",
        "reward",
        "quantity",
        "points_spent",
        "status",
        "cash_amount",
        "cash_paid",
    ]
    list_filter = ["status", "reward"]
    search_fields = ["member__customer_no"]
    list_select_related = ["member", "reward"]
    date_hierarchy = "created_at"
    actions = ["fulfil", "cancel"]
    fields = [
        "id",
        "member",
        "reward",
        "quantity",
        "points_spent",
        "cash_amount",
        "currency",
        "cash_paid_at",
        "cash_payment_reference",
        "status",
        "coupon_codes",
        "debit",
        "refund",
        "created_at",
        "fulfilled_at",
        "fulfilled_by",
        "cancelled_at",
        "cancelled_by",
        "cancel_reason",
    ]
    readonly_fields = fields  # type: ignore[assignment]  # flat names, valid for both

    @admin.display(description=_("customer number"), ordering="member__customer_no")
    def customer_no(self, redemption: Redemption) -> str:
        return redemption.member.customer_no

    @admin.display(description=_("cash paid"), boolean=True)
    def cash_paid(self, redemption: Redemption) -> bool | None:
        if redemption.cash_amount <= 0:
            return None
        return redemption.cash_paid_at is not None

    @admin.display(description=_("coupon codes"))
    def coupon_codes(self, redemption: Redemption) -> str:
        return ", ".join(code.code for code in redemption.codes.order_by("id")) or "-"

    def has_fulfil_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("rewards.fulfil_redemption")

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("rewards.cancel_redemption")

    def _label(self, redemption: Redemption) -> str:
        return f"{redemption.member.customer_no} · {redemption.reward.code} · {redemption.pk}"

    def _each(self, request, queryset, *, target: str, service, done, already) -> None:
        """Run ``service`` on each selected redemption, reporting each refusal by its message
        and going on with the rest."""
        count = unchanged = 0
        for redemption in queryset.select_related("member", "reward").order_by("created_at"):
            if redemption.status == target:
                unchanged += 1
                continue
            try:
                service(redemption)
                count += 1
            except LoyaltyError as exc:
                self.message_user(
                    request, f"{self._label(redemption)}: {exc.detail}", messages.ERROR
                )
            except IntegrityError:  # a constraint refused it: the service wrote nothing
                logger.exception("redemption %s: refused by a constraint", redemption.pk)
                self.message_user(
                    request,
                    _("%(redemption)s: the database refused the change; nothing was changed.")
                    % {"redemption": self._label(redemption)},
                    messages.ERROR,
                )
        if count:
            self.message_user(request, done % {"count": count}, messages.SUCCESS)
        if unchanged:
            self.message_user(request, already % {"count": unchanged}, messages.INFO)

    @admin.action(description=_("Mark selected redemptions fulfilled"), permissions=["fulfil"])
    def fulfil(self, request, queryset):
        self._each(
            request,
            queryset,
            target=Redemption.Status.FULFILLED,
            service=lambda redemption: redemption_fulfil(redemption=redemption, actor=request.user),
            done=_("%(count)s redemptions fulfilled."),
            already=_("%(count)s were fulfilled already."),
        )

    @admin.action(
        description=_("Cancel selected redemptions (points back)"), permissions=["cancel"]
    )
    def cancel(self, request, queryset):
        """Asks for a reason first (an intermediate page), then cancels each through the
        service, which refunds the points and gives stock, budget and codes back."""
        form = CancelForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            reason = form.cleaned_data["reason"]
            self._each(
                request,
                queryset,
                target=Redemption.Status.CANCELLED,
                service=lambda redemption: redemption_cancel(
                    redemption=redemption, actor=request.user, reason=reason
                ),
                done=_("%(count)s redemptions cancelled; their points are back."),
                already=_("%(count)s were cancelled already."),
            )
            return None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Cancel redemptions"),
            "form": form,
            "redemptions": queryset.select_related("member", "reward").order_by("created_at"),
            "count": queryset.count(),
            "selected": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
            "select_across": request.POST.get("select_across", "0"),
        }
        return TemplateResponse(request, "admin/rewards/redemption/cancel.html", context)


@admin.register(BudgetMonth)
class BudgetMonthAdmin(ReadOnlyAdmin):
    list_display = ["reward", "month", "points_spent", "budget"]
    list_filter = ["reward"]
    list_select_related = ["reward"]
    date_hierarchy = "month"

    @admin.display(description=_("monthly points budget"))
    def budget(self, month: BudgetMonth) -> int | None:
        return month.reward.monthly_points_budget
