from django.urls import path

from providers import api

provider = "model-providers/<slug:provider>"
model = f"{provider}/models/<str:model_id>"

urlpatterns = [
    path("model-providers", api.ProviderListApi.as_view(), name="provider-list"),
    path(provider, api.ProviderDetailApi.as_view(), name="provider-detail"),
    path(f"{provider}/credentials", api.CredentialListApi.as_view(), name="credential-list"),
    path(
        f"{provider}/credentials/<int:credential_id>",
        api.CredentialDetailApi.as_view(),
        name="credential-detail",
    ),
    path(
        f"{provider}/credentials/<int:credential_id>/activate",
        api.CredentialActivateApi.as_view(),
        name="credential-activate",
    ),
    path(
        f"{provider}/credentials/<int:credential_id>/validate",
        api.CredentialValidateApi.as_view(),
        name="credential-validate",
    ),
    path(f"{provider}/discover", api.DiscoverApi.as_view(), name="model-discover"),
    path(f"{provider}/models/import", api.ImportApi.as_view(), name="model-import"),
    path(f"{provider}/models", api.ModelListApi.as_view(), name="model-list"),
    path(f"{model}/validate", api.ModelValidateApi.as_view(), name="model-validate"),
    path("validations/<int:job_id>", api.ValidationDetailApi.as_view(), name="validation-detail"),
    path(model, api.ModelDetailApi.as_view(), name="model-detail"),
    path(f"{model}/load-balancing", api.LoadBalancingListApi.as_view(), name="lb-list"),
    path(
        f"{model}/load-balancing/<int:entry_id>",
        api.LoadBalancingDetailApi.as_view(),
        name="lb-detail",
    ),
    path(
        f"{model}/load-balancing/<int:entry_id>/validate",
        api.LoadBalancingValidateApi.as_view(),
        name="lb-validate",
    ),
    path("default-models", api.DefaultModelsApi.as_view(), name="default-models"),
    path("models", api.AvailableModelsApi.as_view(), name="available-models"),
    path("audit-log", api.AuditLogApi.as_view(), name="audit-log"),
]
