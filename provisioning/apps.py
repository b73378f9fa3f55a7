from django.apps import AppConfig


class ProvisioningConfig(AppConfig):
    name = "provisioning"
    verbose_name = "IRSA provisioning"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.core import checks

        from portal.startup import check_aws_target
        from provisioning import security  # noqa: F401 - connects the lockout audit receiver

        checks.register(check_aws_target, checks.Tags.security)
