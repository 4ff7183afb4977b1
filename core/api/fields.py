from rest_framework import serializers


class StrictIntegerField(serializers.IntegerField):
    """Only JSON integers: money is minor units, so 12.5, "12" and true are refused rather than coerced."""

    default_error_messages = {"invalid": "A whole number (integer) is required."}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class CountryField(serializers.RegexField):
    def __init__(self, **kwargs):
        super().__init__(r"^[A-Z]{2}$", max_length=2, **kwargs)
        self.error_messages["invalid"] = "Use an ISO 3166-1 alpha-2 country code such as CZ."
