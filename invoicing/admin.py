"""VAT rates: editable, with history; overlapping periods of one country and category are refused."""

from django import forms
from django.contrib import admin

from core.admin_tools import SafeHistoryAdmin
from invoicing.models import VatRate
from invoicing.selectors import overlapping_rates


class VatRateForm(forms.ModelForm):
    class Meta:
        model = VatRate
        fields = ["country", "category", "rate_bps", "valid_from", "valid_to", "note"]

    def clean_country(self):
        country = (self.cleaned_data.get("country") or "").upper()
        if len(country) != 2 or not country.isalpha():
            raise forms.ValidationError("Use an ISO 3166-1 alpha-2 code such as CZ.")
        return country

    def clean(self):
        cleaned = super().clean()
        country, category = cleaned.get("country"), cleaned.get("category")
        valid_from, valid_to = cleaned.get("valid_from"), cleaned.get("valid_to")
        rate = cleaned.get("rate_bps")
        if rate is not None and rate > 10000:
            self.add_error("rate_bps", "At most 10000 (100 %).")
        if valid_from and valid_to and valid_to <= valid_from:
            self.add_error("valid_to", "Must be after the start.")
        elif country and category and valid_from:
            clash = overlapping_rates(
                country=country,
                category=category,
                valid_from=valid_from,
                valid_to=valid_to,
                exclude_pk=self.instance.pk,
            ).first()
            if clash is not None:
                raise forms.ValidationError(f"The period overlaps {clash}; end that one first.")
        return cleaned


@admin.register(VatRate)
class VatRateAdmin(SafeHistoryAdmin):
    form = VatRateForm
    list_display = ["country", "category", "rate_bps", "valid_from", "valid_to", "note"]
    list_filter = ["country", "category"]
    search_fields = ["country", "note"]
    ordering = ["country", "category", "valid_from"]
