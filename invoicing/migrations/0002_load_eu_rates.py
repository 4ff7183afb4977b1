"""Load the EU-27 standard, reduced and super-reduced VAT rates (invoicing.vat.EU_RATES_BPS, in force on
2026-01-01) as `VatRate` rows valid from 2025-01-01; a reduced or super-reduced rate equal to the rate above
it is not loaded (the look-up falls back to it). Two changes during 2025 are recorded with both periods:
Estonia's standard rate 22 % -> 24 % on 2025-07-01, Romania's standard 19 % -> 21 % and reduced 9 % -> 11 %
on 2025-08-01. Earlier history is not loaded."""

from datetime import date

from django.db import migrations

START = date(2025, 1, 1)
# (country, category): [(rate_bps, valid_from, valid_to)] replacing the single period from START
CHANGES_2025 = {
    ("EE", "standard"): [(2200, START, date(2025, 7, 1)), (2400, date(2025, 7, 1), None)],
    ("RO", "standard"): [(1900, START, date(2025, 8, 1)), (2100, date(2025, 8, 1), None)],
    ("RO", "reduced"): [(900, START, date(2025, 8, 1)), (1100, date(2025, 8, 1), None)],
}
SEED_NOTE = "EU rates loaded by migration invoicing 0002"


def seed_rows():
    from invoicing.vat import EU_RATES_BPS

    for country, (standard, reduced, super_reduced) in sorted(EU_RATES_BPS.items()):
        categories = [("standard", standard)]
        if reduced != standard:
            categories.append(("reduced", reduced))
        if super_reduced != reduced:
            categories.append(("super_reduced", super_reduced))
        for category, rate in categories:
            periods = CHANGES_2025.get((country, category), [(rate, START, None)])
            for rate_bps, valid_from, valid_to in periods:
                yield dict(
                    country=country,
                    category=category,
                    rate_bps=rate_bps,
                    valid_from=valid_from,
                    valid_to=valid_to,
                    note=SEED_NOTE,
                )


def load(apps, schema_editor):
    VatRate = apps.get_model("invoicing", "VatRate")
    for row in seed_rows():
        VatRate.objects.get_or_create(
            country=row["country"], category=row["category"], valid_from=row["valid_from"], defaults=row
        )


def unload(apps, schema_editor):
    apps.get_model("invoicing", "VatRate").objects.filter(note=SEED_NOTE).delete()


class Migration(migrations.Migration):
    dependencies = [("invoicing", "0001_initial")]

    operations = [migrations.RunPython(load, unload)]
