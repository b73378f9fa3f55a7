# Merges the two wave-2 leaves of branch i1213 (issue 12's webhooks, issue 13's preferences).
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("provisioning", "0005_i12_webhooks"),
        ("provisioning", "0005_i13_notification_prefs"),
    ]
    operations = []
