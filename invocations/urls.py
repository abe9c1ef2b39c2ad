from django.urls import path

from invocations import api

urlpatterns = [
    path("usage", api.UsageApi.as_view(), name="usage"),
    path("invocations", api.InvocationListApi.as_view(), name="invocation-list"),
    path(
        "invocations/<int:invocation_id>",
        api.InvocationDetailApi.as_view(),
        name="invocation-detail",
    ),
    path(
        "invocations/<int:invocation_id>/audio",
        api.InvocationAudioApi.as_view(),
        name="invocation-audio",
    ),
]
