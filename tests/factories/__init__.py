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


def staff_with(*perms: str):
    """A staff user holding only `perms` ("app_label.codename"), read fresh (no cached permissions)."""
    from django.contrib.auth.models import Permission

    user = StaffFactory()
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return type(user).objects.get(pk=user.pk)


def staff_client(*perms: str):
    """A test client logged in as a staff user holding only `perms`; the user is `client.user`."""
    from django.test import Client

    client = Client()
    client.user = staff_with(*perms)
    client.force_login(client.user)
    return client
