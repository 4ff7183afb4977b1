from django import forms
from django.core.validators import MaxValueValidator

from payments.models import PaymentLink

COUNTRIES = [
    ("", "Choose your country"),
    ("AT", "Austria"),
    ("BE", "Belgium"),
    ("BG", "Bulgaria"),
    ("HR", "Croatia"),
    ("CY", "Cyprus"),
    ("CZ", "Czechia"),
    ("DK", "Denmark"),
    ("EE", "Estonia"),
    ("FI", "Finland"),
    ("FR", "France"),
    ("DE", "Germany"),
    ("GR", "Greece"),
    ("HU", "Hungary"),
    ("IE", "Ireland"),
    ("IT", "Italy"),
    ("LV", "Latvia"),
    ("LT", "Lithuania"),
    ("LU", "Luxembourg"),
    ("MT", "Malta"),
    ("NL", "Netherlands"),
    ("PL", "Poland"),
    ("PT", "Portugal"),
    ("RO", "Romania"),
    ("SK", "Slovakia"),
    ("SI", "Slovenia"),
    ("ES", "Spain"),
    ("SE", "Sweden"),
    ("CH", "Switzerland"),
    ("GB", "United Kingdom"),
    ("NO", "Norway"),
    ("US", "United States"),
    ("JP", "Japan"),
]


class PaymentLinkForm(forms.Form):
    email = forms.EmailField(
        label="Your e-mail",
        max_length=254,
        help_text="We send the receipt here.",
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    country = forms.ChoiceField(label="Country", choices=COUNTRIES, required=False)
    quantity = forms.IntegerField(label="Quantity", min_value=1, initial=1)

    def __init__(self, *args, link: PaymentLink, **kwargs):
        super().__init__(*args, **kwargs)
        self.link = link
        self.fields["quantity"].widget.attrs.update({"min": 1, "max": link.max_quantity})
        self.fields["quantity"].validators.append(
            MaxValueValidator(link.max_quantity, message=f"You can buy at most {link.max_quantity} at once.")
        )
        if not link.allow_quantity:
            self.fields["quantity"].widget = forms.HiddenInput()


class ChooseMethodForm(forms.Form):
    method = forms.ChoiceField(label="How would you like to pay?", widget=forms.RadioSelect)

    def __init__(self, *args, providers, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["method"].choices = [(p.name, p.display_name) for p in providers]
        if len(providers) == 1:
            self.fields["method"].initial = providers[0].name


class StoreCreditForm(forms.Form):
    """The "Have store credit?" box on the checkout page (paying with a code; no JavaScript)."""

    store_credit_code = forms.CharField(
        label="Have store credit? Enter the code",
        max_length=40,
        help_text="It looks like ABCD-EFGH-JKMN. If it covers only part of the order, you pay the rest another way.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false", "autocapitalize": "characters"}),
    )


class StoreCreditLookupForm(forms.Form):
    email = forms.EmailField(
        label="Your e-mail",
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
        help_text="We e-mail the codes of your store credit there (never shown on this page).",
    )
