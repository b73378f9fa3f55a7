from django.urls import path

from provisioning import views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("services/<str:name>/", views.microservice_detail, name="microservice-detail"),
]
