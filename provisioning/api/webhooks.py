"""Webhook subscriptions over the API: team members manage their team's, staff all (and the
admin-wide ones, which have no team). The secret is shown once, in the 201 of the create."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics, serializers
from rest_framework.filters import OrderingFilter

from provisioning import selectors
from provisioning.api.etags import ETagMixin
from provisioning.api.idempotency import IdempotentPostMixin
from provisioning.api.serializers import RefuseControlCharactersMixin
from provisioning.api.views import ERRORS
from provisioning.models import Team
from provisioning.notifications.models import (
    WebhookDelivery,
    WebhookEvent,
    WebhookSubscription,
)
from provisioning.notifications.webhooks import webhook_secret_new
from provisioning.services.audit import audit_record


class WebhookSerializer(RefuseControlCharactersMixin, serializers.ModelSerializer):
    team = serializers.SlugRelatedField(
        slug_field="name",
        queryset=Team.objects.none(),  # the user's teams, set per request in __init__
        required=False,
        allow_null=True,
        help_text="One of your teams; staff may omit it for every team's events.",
    )
    url = serializers.URLField(help_text="http(s) URL that receives signed POSTs.")
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=WebhookEvent.choices), allow_empty=False
    )

    class Meta:
        model = WebhookSubscription
        fields = ["id", "team", "url", "events", "active", "created_at"]
        read_only_fields = ["id", "created_at"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        if request is not None and request.user.is_authenticated:
            self.fields["team"].queryset = selectors.team_list_for_user(user=request.user)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        user = self.context["request"].user
        current = self.instance.team if self.instance is not None else None
        if attrs.get("team", current) is None and not user.is_staff:
            raise serializers.ValidationError({"team": ["Name one of your teams."]})
        attrs["events"] = sorted(set(attrs.get("events", [])))
        return attrs


class WebhookCreatedSerializer(WebhookSerializer):
    secret = serializers.CharField(
        read_only=True, help_text="Shown only now: keep it to verify X-IRSA-Signature."
    )

    class Meta(WebhookSerializer.Meta):
        fields = [*WebhookSerializer.Meta.fields, "secret"]


class DeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "event",
            "status",
            "attempts",
            "last_status_code",
            "last_response",
            "last_attempt_at",
            "created_at",
            "payload",
        ]


def _subscriptions(user: Any) -> QuerySet[WebhookSubscription]:
    qs = WebhookSubscription.objects.select_related("team").order_by("pk")
    if not user.is_authenticated:  # the schema generator's fake request
        return qs.none()
    if user.is_staff:
        return qs
    return qs.filter(Q(team__members=user)).distinct()


@extend_schema_view(
    get=extend_schema(summary="Webhook subscriptions", description="Yours (staff: all)."),
    post=extend_schema(
        summary="Subscribe a URL to events",
        description="Events: " + ", ".join(WebhookEvent.values) + ". The response carries "
        "the signing secret, once.",
        request=WebhookSerializer,
        responses={201: WebhookCreatedSerializer, **ERRORS},
    ),
)
class WebhookListCreate(IdempotentPostMixin, generics.ListCreateAPIView):
    serializer_class = WebhookSerializer
    filter_backends = [OrderingFilter]
    ordering_fields = ["id", "created_at"]

    def get_queryset(self):
        return _subscriptions(self.request.user)

    def get_serializer_class(self):
        return WebhookCreatedSerializer if self.request.method == "POST" else WebhookSerializer

    def perform_create(self, serializer: WebhookSerializer) -> None:
        hook = serializer.save(created_by=self.request.user, secret=webhook_secret_new())
        audit_record(
            actor=self.request.user,
            action="webhook.created",
            obj=hook,
            data={"url": hook.url, "events": hook.events},
        )


@extend_schema_view(
    get=extend_schema(summary="A webhook subscription"),
    put=extend_schema(
        summary="Replace a webhook subscription", responses={200: WebhookSerializer, **ERRORS}
    ),
    patch=extend_schema(
        summary="Change a webhook subscription (e.g. `active`)",
        responses={200: WebhookSerializer, **ERRORS},
    ),
    delete=extend_schema(summary="Delete a webhook subscription"),
)
class WebhookDetail(ETagMixin, generics.RetrieveUpdateDestroyAPIView):
    serializer_class = WebhookSerializer

    def get_queryset(self):
        return _subscriptions(self.request.user)

    def perform_destroy(self, instance: WebhookSubscription) -> None:
        audit_record(actor=self.request.user, action="webhook.deleted", obj=instance, data={})
        instance.delete()


@extend_schema(
    summary="A webhook's delivery log",
    description="Newest first: attempts, the status and the last response of each event.",
)
class WebhookDeliveries(generics.ListAPIView):
    serializer_class = DeliverySerializer

    def get_queryset(self):
        hook = generics.get_object_or_404(_subscriptions(self.request.user), pk=self.kwargs["pk"])
        return hook.deliveries.order_by("-created_at", "-id")
