from django.apps import AppConfig


class ClaimsConfig(AppConfig):
    name = "portal.claims"
    label = "claims"
    verbose_name = "Insurer claims and provenance"

    def ready(self) -> None:
        # Record provenance for every instance the PACS accepted, in the same request/task that stored it.
        from portal.claims import receivers
        from portal.studies.signals import instances_staged, instances_stored, upload_stored

        instances_staged.connect(receivers.fingerprint_staged_instances, dispatch_uid="claims.provenance_prepare")
        instances_stored.connect(receivers.record_stored_instances, dispatch_uid="claims.provenance_ledger")
        upload_stored.connect(receivers.check_image_reuse, dispatch_uid="claims.image_reuse")
