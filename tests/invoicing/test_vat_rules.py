"""The VAT rule table (invoicing.vat.vat_treatment), one test per case. Pure: no database."""

import pytest

from invoicing.vat import (
    EU_RATES_BPS,
    LEGEND_OSS,
    LEGEND_OUT_OF_SCOPE,
    LEGEND_REVERSE_CHARGE,
    MissingVatRate,
    VatCategory,
    VatScheme,
    VatTreatment,
    commission_vat_treatment,
    vat_treatment,
)


def seed_rates(country: str, category: str) -> int | None:
    """The seed table as a look-up, without the repeated numbers (a country has no such separate rate)."""
    standard, reduced, super_reduced = EU_RATES_BPS.get(country, (None, None, None))
    if category == VatCategory.STANDARD:
        return standard
    if category == VatCategory.REDUCED:
        return reduced if reduced != standard else None
    if category == VatCategory.SUPER_REDUCED:
        return super_reduced if super_reduced != reduced else None
    return None


def treat(**overrides) -> VatTreatment:
    args = dict(
        supplier_country="CZ",
        supplier_uses_oss=False,
        buyer_country="CZ",
        buyer_vat_id_valid=False,
        line_kind="goods",
        event_country="",
        category=VatCategory.STANDARD,
        rates=seed_rates,
    )
    args.update(overrides)
    return vat_treatment(**args)


def test_domestic_cz_to_cz_standard():
    assert treat() == VatTreatment(VatScheme.DOMESTIC, "CZ", 2100, "")


def test_domestic_cz_to_cz_reduced():
    assert treat(category=VatCategory.REDUCED) == VatTreatment(VatScheme.DOMESTIC, "CZ", 1200, "")


def test_domestic_b2b_with_vat_id_in_the_same_country_is_not_reverse_charged():
    assert treat(buyer_vat_id_valid=True) == VatTreatment(VatScheme.DOMESTIC, "CZ", 2100, "")


def test_no_buyer_country_is_treated_as_domestic():
    assert treat(buyer_country="") == VatTreatment(VatScheme.DOMESTIC, "CZ", 2100, "")


def test_eu_b2b_with_valid_vat_id_is_reverse_charged_with_the_legend():
    result = treat(buyer_country="DE", buyer_vat_id_valid=True)
    assert result == VatTreatment(VatScheme.REVERSE_CHARGE, "DE", 0, LEGEND_REVERSE_CHARGE)
    assert "Art. 196 Council Directive 2006/112/EC" in result.legend


def test_eu_b2c_distance_sale_with_oss_takes_the_buyer_country_rate():
    result = treat(buyer_country="DE", supplier_uses_oss=True)
    assert result == VatTreatment(VatScheme.OSS, "DE", 1900, LEGEND_OSS)


def test_eu_b2c_distance_sale_with_oss_reduced_takes_the_buyer_country_reduced_rate():
    assert treat(buyer_country="FR", supplier_uses_oss=True, category=VatCategory.REDUCED).rate_bps == 550


def test_eu_b2c_distance_sale_without_oss_takes_the_supplier_country_rate():
    # Below the EU-wide EUR 10,000 threshold (Art. 59c) and not in OSS: the supplier's own VAT.
    assert treat(buyer_country="DE") == VatTreatment(VatScheme.DOMESTIC, "CZ", 2100, "")


def test_event_admission_is_taxed_in_the_event_country():
    result = treat(line_kind="event_ticket", event_country="AT", buyer_country="CZ")
    assert result == VatTreatment(VatScheme.EVENT_ADMISSION, "AT", 2000, "")


def test_event_admission_b2b_is_taxed_in_the_event_country_not_reverse_charged():
    result = treat(line_kind="event_ticket", event_country="AT", buyer_country="DE", buyer_vat_id_valid=True)
    assert result == VatTreatment(VatScheme.EVENT_ADMISSION, "AT", 2000, "")


def test_event_admission_reduced_category_uses_the_event_country_reduced_rate():
    result = treat(line_kind="event_ticket", event_country="AT", category=VatCategory.REDUCED)
    assert result.rate_bps == 1000


def test_event_admission_for_a_non_eu_buyer_is_still_taxed_where_the_event_is():
    assert treat(line_kind="event_ticket", event_country="CZ", buyer_country="US").scheme == VatScheme.EVENT_ADMISSION


def test_event_outside_the_eu_is_out_of_scope():
    result = treat(line_kind="event_ticket", event_country="GB")
    assert result == VatTreatment(VatScheme.OUT_OF_SCOPE, "GB", 0, LEGEND_OUT_OF_SCOPE)


def test_buyer_outside_the_eu_is_out_of_scope():
    result = treat(buyer_country="US")
    assert result == VatTreatment(VatScheme.OUT_OF_SCOPE, "US", 0, LEGEND_OUT_OF_SCOPE)
    assert result.legend == "Outside the scope of EU VAT"


def test_supplier_outside_the_eu_is_out_of_scope():
    assert treat(supplier_country="CH").scheme == VatScheme.OUT_OF_SCOPE


def test_exempt_category_is_exempt_at_zero():
    result = treat(category=VatCategory.EXEMPT, buyer_country="DE", supplier_uses_oss=True)
    assert (result.scheme, result.rate_bps) == (VatScheme.EXEMPT, 0)


def test_zero_category_keeps_the_scheme_at_zero():
    result = treat(category=VatCategory.ZERO, buyer_country="DE", supplier_uses_oss=True)
    assert (result.scheme, result.country_of_taxation, result.rate_bps) == (VatScheme.OSS, "DE", 0)


def test_a_country_without_a_reduced_rate_falls_back_to_standard():
    # Denmark has a single 25 % rate.
    assert treat(supplier_country="DK", buyer_country="DK", category=VatCategory.REDUCED).rate_bps == 2500


def test_super_reduced_falls_back_to_reduced_where_there_is_none():
    assert treat(category=VatCategory.SUPER_REDUCED).rate_bps == 1200  # CZ: no super-reduced rate
    assert treat(supplier_country="FR", buyer_country="FR", category=VatCategory.SUPER_REDUCED).rate_bps == 210


def test_lower_case_countries_are_accepted():
    assert treat(supplier_country="cz", buyer_country="de", buyer_vat_id_valid=True).scheme == VatScheme.REVERSE_CHARGE


def test_a_member_state_without_any_rate_raises():
    with pytest.raises(MissingVatRate):
        treat(rates=lambda country, category: None)


# The platform's commission (a service to the payee, general B2B rule): one test per case.


def commission(payee_country: str, vat_id_valid: bool = False) -> VatTreatment:
    return commission_vat_treatment(
        platform_country="CZ", platform_rate_bps=2100, payee_country=payee_country, payee_vat_id_valid=vat_id_valid
    )


def test_commission_to_a_payee_in_the_platform_country_carries_the_platform_rate():
    assert commission("CZ", vat_id_valid=True) == VatTreatment(VatScheme.DOMESTIC, "CZ", 2100)


def test_commission_to_an_eu_payee_with_a_valid_vat_id_is_reverse_charged():
    assert commission("DE", vat_id_valid=True) == VatTreatment(VatScheme.REVERSE_CHARGE, "DE", 0, LEGEND_REVERSE_CHARGE)


def test_commission_to_an_eu_payee_without_a_vat_id_carries_the_platform_rate():
    assert commission("SK") == VatTreatment(VatScheme.DOMESTIC, "CZ", 2100)


def test_commission_to_a_payee_outside_the_eu_is_out_of_scope():
    assert commission("US") == VatTreatment(VatScheme.OUT_OF_SCOPE, "US", 0, LEGEND_OUT_OF_SCOPE)
