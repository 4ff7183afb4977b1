"""factory_boy factories for the domain models."""

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from commissions.models import Payee
from core.models import ApiClient
from payments.models import LineKind, PaymentLink, PaymentLinkLine


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    password = factory.django.Password("correct-horse-battery")


class StaffFactory(UserFactory):
    is_staff = True


class ApiClientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ApiClient

    name = factory.Sequence(lambda n: f"marketplace-{n}")


class PayeeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Payee

    kind = Payee.Kind.SELLER
    legal_name = factory.Sequence(lambda n: f"Seller {n} s.r.o.")
    country = "CZ"
    email = factory.Sequence(lambda n: f"payee{n}@example.com")


class PaymentLinkFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PaymentLink

    slug = factory.Sequence(lambda n: f"link-{n}")
    title = "Car amplifier"
    currency = "EUR"


class PaymentLinkLineFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PaymentLinkLine

    link = factory.SubFactory(PaymentLinkFactory)
    payee = factory.SubFactory(PayeeFactory)
    description = "Amplifier 4×100 W"
    kind = LineKind.GOODS
    unit_amount_minor = 12900


def now():
    return timezone.now()
