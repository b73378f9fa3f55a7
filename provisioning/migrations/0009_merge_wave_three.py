from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("provisioning", "0008_i10b_data_loss_confirmation"),
        ("provisioning", "0008_i12b_webhook_outbox"),
    ]

    operations = []
