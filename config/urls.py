from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponseRedirect, JsonResponse
from django.templatetags.static import static
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from config.health import healthz
from invocations import pages as invocation_pages
from providers import views as provider_views
from tenants import accept, login, web
from tenants import pages as tenant_pages

provider = "settings/model-providers/<slug:provider>"
admin.site.login_form = login.AdminLoginForm

settings_pages = [
    path("", RedirectView.as_view(pattern_name="settings-providers"), name="settings"),
    path("model-providers/", provider_views.providers_page, name="settings-providers"),
    path("model-providers/defaults", provider_views.defaults_section, name="settings-defaults"),
    path("workspace", web.switch_workspace, name="switch-workspace"),
    path("usage/", invocation_pages.usage_page, name="settings-usage"),
    path("api-keys/", tenant_pages.api_keys_page, name="settings-api-keys"),
    path("api-keys/create", tenant_pages.api_key_create, name="settings-api-keys-create"),
    path(
        "api-keys/<int:key_id>/revoke",
        tenant_pages.api_key_revoke,
        name="settings-api-keys-revoke",
    ),
    path("members/", tenant_pages.members_page, name="settings-members"),
    path("members/invite", tenant_pages.member_invite, name="settings-members-invite"),
    path(
        "members/<int:membership_id>/role",
        tenant_pages.member_role,
        name="settings-members-role",
    ),
    path(
        "members/<int:membership_id>/remove",
        tenant_pages.member_remove,
        name="settings-members-remove",
    ),
    path(
        "members/invitations/<int:invitation_id>/resend",
        tenant_pages.invitation_resend,
        name="settings-invitation-resend",
    ),
    path(
        "members/invitations/<int:invitation_id>/revoke",
        tenant_pages.invitation_revoke,
        name="settings-invitation-revoke",
    ),
]
provider_fragments = [
    path(f"{provider}/card", provider_views.provider_card, name="settings-provider-card"),
    path(f"{provider}/setup", provider_views.provider_setup, name="settings-provider-setup"),
    path(
        f"{provider}/credentials/<int:credential_id>/<slug:action>",
        provider_views.credential_action,
        name="settings-credential-action",
    ),
    path(f"{provider}/checks/<int:job_id>", provider_views.check_status, name="settings-check"),
    path(f"{provider}/models", provider_views.provider_models, name="settings-provider-models"),
    path(f"{provider}/models/add", provider_views.add_model, name="settings-add-model"),
    path(
        f"{provider}/models/<str:model_id>/load-balancing",
        provider_views.load_balancing,
        name="settings-load-balancing",
    ),
    path(
        f"{provider}/models/<str:model_id>/<slug:action>",
        provider_views.model_action,
        name="settings-model-action",
    ),
]


def api_not_found(request: HttpRequest) -> JsonResponse:
    return JsonResponse(
        {"error": {"code": "not_found", "message": f"No API endpoint at {request.path[:200]}."}},
        status=404,
    )


# The <link rel="icon"> of templates/base.html.
FAVICON = "providers/icons/openai_api_compatible.svg"


def favicon(request: HttpRequest) -> HttpResponseRedirect:
    """Browsers ask for /favicon.ico whatever the page's <link rel="icon"> says: send them to that
    icon (a temporary redirect, as the static file's hashed name changes with its content)."""
    return HttpResponseRedirect(static(FAVICON))


handler400 = "config.exceptions.bad_request"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="settings-providers"), name="home"),
    path("healthz", healthz, name="healthz"),
    path("favicon.ico", favicon, name="favicon"),
    # Before admin.site.urls: the admin's own login, answering 429 while locked out.
    path("admin/login/", login.refused_while_locked(admin.site.login)),
    path("admin/", admin.site.urls),
    path(
        "accounts/login/",
        login.refused_while_locked(auth_views.LoginView.as_view(form_class=login.LoginForm)),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    # An invitation's link; it hands over to the token-less page at once (tenants.accept).
    path("invite/<str:token>/", accept.open_link, name="invitation-open"),
    path("invite/", accept.invitation_page, name="invitation"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("settings/", include(settings_pages)),
    *provider_fragments,
    path("api/v1/", include("tenants.urls")),
    path("api/v1/", include("providers.urls")),
    path("api/v1/", include("invocations.urls")),
    re_path(r"^api/v1/", api_not_found),  # anything else under the API: its JSON 404
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves its set-up script as a file (?script): the CSP allows no inline one.
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(url_name="schema", template_name="api/swagger_ui.html"),
        name="swagger-ui",
    ),
]
