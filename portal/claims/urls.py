from django.urls import path

from portal.claims import views

app_name = "claims"

urlpatterns = [
    # Server-rendered pages for insurers (the SPA links to /claims).
    path("claims/", views.claims_page, name="page-list"),
    path("claims/<uuid:claim_id>/", views.claim_page, name="page-detail"),
    path("claims/<uuid:claim_id>/report.pdf", views.claim_pdf, name="page-pdf"),
    path("claims/<uuid:claim_id>/images/<int:position>/<str:label>.png", views.claim_figure, name="figure"),
    # JSON API.
    path("api/claims/", views.claim_list, name="api-list"),
    path("api/claims/shared-studies", views.shared_studies, name="api-shared-studies"),
    path("api/claims/<uuid:claim_id>", views.claim_detail, name="api-detail"),
    path("api/claims/<uuid:claim_id>/images", views.claim_images, name="api-images"),
    path("api/claims/<uuid:claim_id>/studies", views.claim_studies, name="api-studies"),
    path("api/claims/<uuid:claim_id>/report.pdf", views.claim_pdf, name="api-pdf"),
    path("api/provenance/keys", views.public_keys, name="api-keys"),
    path("api/provenance/ledger/verify", views.ledger_verify, name="api-ledger-verify"),
    path("api/provenance/studies/<str:study_uid>/integrity", views.study_integrity, name="api-study-integrity"),
    path("api/provenance/studies/<str:study_uid>/copies", views.study_copies, name="api-study-copies"),
    path("api/provenance/series/<str:series_uid>/copies/<str:other_study_uid>", views.series_copy_pairs,
         name="api-series-copy-pairs"),
    path("api/provenance/instances/<str:sop_uid>", views.instance_provenance, name="api-instance"),
    path("api/provenance/instances/<str:sop_uid>/lung.png", views.instance_png, name="api-instance-png"),
    path("api/shares/studies/<str:study_uid>/insurers", views.share_with_insurer, name="api-share-insurer"),
    path("api/shares/studies/<str:study_uid>/insurers/<str:insurer>", views.unshare_with_insurer,
         name="api-unshare-insurer"),
    path("api/insurers", views.insurer_list, name="api-insurers"),
    path("api/shares/encrypted", views.encrypted_shares, name="api-encrypted"),
    path("api/shares/encrypted/<uuid:share_id>/archive", views.encrypted_share_archive, name="api-archive"),
    path("api/shares/encrypted/<uuid:share_id>/revoke", views.encrypted_share_revoke, name="api-revoke"),
    path("api/shares/encrypted/<uuid:share_id>/open", views.encrypted_share_open, name="api-open"),
    path("api/shares/encrypted/<uuid:share_id>/files", views.encrypted_share_files, name="api-files"),
    path("api/shares/import", views.encrypted_share_import, name="api-import"),
]
