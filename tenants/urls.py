from django.urls import path

from tenants import api

urlpatterns = [
    path("tenants", api.TenantListApi.as_view(), name="tenant-list"),
    path("tenants/current", api.TenantCurrentApi.as_view(), name="tenant-current"),
    path("api-keys", api.ApiKeyListCreateApi.as_view(), name="api-key-list"),
    path("api-keys/<int:key_id>", api.ApiKeyDetailApi.as_view(), name="api-key-detail"),
    path("api-keys/<int:key_id>/revoke", api.ApiKeyRevokeApi.as_view(), name="api-key-revoke"),
]
