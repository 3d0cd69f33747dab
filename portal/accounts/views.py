"""Account pages rendered by Django (the sign-in page is Django's own view)."""

from django.contrib.auth import views as auth_views

from portal.accounts import services


class PasswordChangeView(auth_views.PasswordChangeView):
    """Django's form (old password, new one twice, the configured validators); then services.password_changed."""

    def form_valid(self, form):  # noqa: ANN001, ANN201 - Django's signature
        response = super().form_valid(form)
        services.password_changed(form.user)
        return response
