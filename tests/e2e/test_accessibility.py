"""axe-core (frontend devDependency) on every main page, per role: no WCAG violation it can detect."""

import pytest

from tests.conftest import upload_paths
from tests.detection.test_radiographs import x_ray_series
from tests.e2e.browser import log_in
from tests.e2e.conftest import REPO

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
AXE = REPO / "frontend" / "node_modules" / "axe-core" / "axe.min.js"
RUN_AXE = """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
    .map(v => `${v.impact} ${v.id}: ${v.help} at ${v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', ')}`)"""


def violations(page, url: str, ready: str) -> list[str]:
    page.goto(url)
    page.locator(ready).first.wait_for()
    page.evaluate(AXE.read_text())  # through the debugging protocol: the page's CSP forbids inline scripts
    return [f"{url}: {v}" for v in page.evaluate(RUN_AXE)]


def _double_read(series, *annotators) -> None:
    from annotations.models import QueueItem
    from annotations.services import label_create

    item = QueueItem.objects.create(series=series, slice_index=0, x=200, y=200, strategy="entropy", priority=1.0,
                                    required_labels=2)  # fmt: skip
    for annotator, label_class in zip(annotators, ("TB", "FM"), strict=True):
        label_create(user=annotator, series=series, slice_index=0, x=200, y=200, label_class=label_class,
                     queue_item=item)  # fmt: skip


def test_main_pages_have_no_axe_violations(live_server, orthanc, ct_files, tmp_path, user_factory, page):
    from portal.claims import services as claims

    clinician, expert, insurer = user_factory("clinician"), user_factory("expert"), user_factory("insurer")
    outcome = upload_paths(clinician, ct_files[45:50])
    series = outcome.jobs[0].series
    study = series.study
    claims.study_share_with_insurer(actor=clinician, study=study, insurer=insurer)
    claim = claims.claim_create(actor=insurer, reference="A11Y-1")
    claims.claim_reference_study(actor=insurer, claim=claim, study_uid=study.study_uid)
    claims.claim_add_image(actor=insurer, claim=claim, name="slice.dcm", data=ct_files[46].read_bytes())
    _double_read(series, user_factory("annotator"), user_factory("annotator"))  # fills the agreement tab
    x_ray = upload_paths(clinician, x_ray_series(ct_files, tmp_path)).stored[0]  # a copy found, to review

    base, found = live_server.url, []
    pages = {
        clinician: [("/upload", "[data-testid=drop-zone]"), ("/studies", "[data-testid=study-row]"),
                    (f"/studies/{study.study_uid}", "[data-testid=insurer-row]"), ("/shares", "h1")],
        expert: [(f"/viewer/{study.study_uid}/{series.series_uid}", "[data-testid=series-verdict]"),
                 ("/queue", "[data-testid=queue-retraining]"), ("/models", "[data-testid=model-row]"),
                 ("/queue?mode=agreement", "[data-testid=agreement-confusion]"),
                 ("/queue?mode=copy-move", "[data-testid=copy-move-finding]"),
                 (f"/viewer/{x_ray['study_uid']}/{x_ray['series_uid']}", "[data-testid=copy-move-confirm]")],
        insurer: [("/claims/", "[data-testid=claim-row]"), (f"/claims/{claim.id}/", "[data-testid=status]"),
                  ("/no-such-page", "[data-testid=not-found]"), ("/accounts/password/", "[data-testid=password-form]")],
    }
    for path, ready in [("/accounts/login/", "[data-testid=login-form]"),
                        ("/accounts/password/reset/", "[data-testid=password-reset-form]")]:  # signed out
        found += violations(page, f"{base}{path}", ready)
    for user, targets in pages.items():
        page.goto(f"{base}/accounts/login/")
        log_in(page, user.username)
        for path, ready in targets:
            found += violations(page, f"{base}{path}", ready)
        page.context.clear_cookies()
    assert not found, "\n".join(found)
