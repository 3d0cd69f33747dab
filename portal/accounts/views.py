"""Account pages rendered by Django (the sign-in page is Django's own view)."""

from django.contrib.auth import views as auth_views
from django.http import HttpResponseRedirect

from portal.accounts import services


class PasswordChangeView(auth_views.PasswordChangeView):
    """Django's form (old password, new one twice, the configured validators); then services.password_changed."""

    def form_valid(self, form):  # noqa: ANN001, ANN201 - Django's signature
        response = super().form_valid(form)
        services.password_changed(form.user)
        return response


class PasswordResetView(auth_views.PasswordResetView):
    """Asks for the account's email and sends a one-time link (Django's signed token, valid
    PASSWORD_RESET_TIMEOUT); the page reads the same whether or not the address has an account."""

    template_name = "registration/password_reset_form.html"
    email_template_name = "registration/password_reset_email.txt"
    subject_template_name = "registration/password_reset_subject.txt"

    def form_valid(self, form):  # noqa: ANN001, ANN201 - Django's signature
        email, ip = form.cleaned_data["email"], self.request.META.get("REMOTE_ADDR", "")
        allowed = services.reset_email_allowed(email)
        for user in form.get_users(email):
            services.audit(None, "account.password_reset_request", user, ip=ip, sent=allowed)
        if not allowed:  # the same page as a sent link: it tells nothing about the address
            return HttpResponseRedirect(self.get_success_url())
        return super().form_valid(form)


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "registration/password_reset_confirm.html"

    def form_valid(self, form):  # noqa: ANN001, ANN201 - Django's signature
        response = super().form_valid(form)
        services.password_changed(form.user, via="reset")
        return response
