from django.db import migrations

from core.immutable import ProtectRows


class Migration(migrations.Migration):
    dependencies = [("core", "0001_initial")]
    operations = [ProtectRows("core_auditentry")]
