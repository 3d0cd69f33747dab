from concurrent.futures import ThreadPoolExecutor

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from portal.claims.integrity import PROBLEM_KINDS, WITHDRAWN_NOTE, send_integrity_alert, study_integrity
from portal.studies.dicomweb import PacsUnavailable
from portal.studies.models import Study


def _check(study: Study) -> dict:
    return study_integrity(actor=None, study=study)


def _check_in_thread(study: Study) -> dict:
    try:
        return _check(study)
    finally:
        connection.close()  # each worker thread opened its own database connection


class Command(BaseCommand):
    help = ("Compare every image of every study (or of --study) in the PACS with what the portal signed at upload; "
            "email TAMPER_ALERT_EMAILS about changed or missing images (withdrawn studies too, said so). Run it "
            "nightly (cron). Exit status 1 when something was found, 2 when the PACS could not be reached.")

    def add_arguments(self, parser):
        parser.add_argument("--study", action="append", default=[], help="a StudyInstanceUID (repeatable)")
        parser.add_argument("--jobs", type=int, default=4,
                            help="studies checked at once (the time goes into PACS requests; default 4)")

    def handle(self, *args, study, jobs, **options):
        studies = list((Study.objects.filter(study_uid__in=study) if study else Study.objects.all())
                       .select_related("patient").order_by("pk"))  # fmt: skip
        findings, totals = [], {"checked": 0, **dict.fromkeys(PROBLEM_KINDS, 0)}
        try:
            with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
                reports = pool.map(_check_in_thread, studies) if jobs > 1 else map(_check, studies)
                for one, report in zip(studies, reports, strict=True):  # in study order
                    totals["checked"] += report["checked"]
                    for kind in PROBLEM_KINDS:
                        totals[kind] += len(report[kind])
                    if report["changed"] or report["missing"]:
                        findings.append((one, report))
                        self.stdout.write(f"{one.study_uid}: {len(report['changed'])} changed, "
                                          f"{len(report['missing'])} missing of {report['checked']}"
                                          f"{WITHDRAWN_NOTE if one.withdrawn_at else ''}")
        except PacsUnavailable as exc:
            raise CommandError(f"the PACS is unreachable: {exc}", returncode=2) from exc
        self.stdout.write(f"{len(studies)} studies, {totals['checked']} images: {totals['changed']} changed, "
                          f"{totals['missing']} missing, {totals['unverifiable']} unverifiable")
        if findings:
            told = send_integrity_alert(findings)
            raise CommandError(f"{len(findings)} study(ies) differ from what was signed at upload"
                               + (f"; {told} address(es) emailed" if told else "; set TAMPER_ALERT_EMAILS to be told"),
                               returncode=1)
