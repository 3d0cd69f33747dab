"""Mounted by portal/urls.py at /api/."""

from django.urls import path

from annotations import views
from detection import api as model_api

urlpatterns = [
    path("labels", views.labels, name="labels"),
    path("labels/import", views.import_csv, name="labels-import"),
    path("labels/agreement", views.agreement, name="labels-agreement"),
    path("labels/<int:pk>", views.label_detail, name="label-detail"),
    path("labels/<int:pk>/history", views.label_history, name="label-history"),
    path("labels/<int:pk>/relabel", views.label_relabel, name="label-relabel"),
    path("labels/<int:pk>/restore", views.label_restore, name="label-restore"),
    path("studies/<str:study_uid>/labels.csv", views.export_csv, name="labels-export-csv"),
    path("studies/<str:study_uid>/labels.sr.dcm", views.export_sr, name="labels-export-sr"),
    path("series/<str:series_uid>/measurements", views.series_measurements, name="series-measurements"),
    path("measurements/<int:pk>", views.measurement_detail, name="measurement-detail"),
    path("series/<str:series_uid>/copy-move/<str:sop_instance_uid>/reviews", views.copy_move_reviews,
         name="copy-move-reviews"),
    path("copy-move/findings", views.copy_move_findings, name="copy-move-findings"),
    path("queue", views.queue_list, name="queue"),
    path("queue/next", views.queue_next, name="queue-next"),
    path("queue/summary", views.queue_summary, name="queue-summary"),
    path("queue/strategies", views.strategies, name="queue-strategies"),
    path("queue/rebuild", views.queue_rebuild, name="queue-rebuild"),
    path("queue/<int:pk>/release", views.queue_release, name="queue-release"),
    path("adjudications", views.adjudication_list, name="adjudications"),
    path("adjudications/<int:pk>", views.adjudicate, name="adjudicate"),
    path("retrain", views.retrain, name="retrain"),
    path("models", model_api.model_list, name="models"),
    path("models/single-image", model_api.single_image_model, name="model-single-image"),
    path("models/stale-series", model_api.stale_series, name="model-stale-series"),
    path("models/<int:pk>", model_api.model_detail, name="model-detail"),
    path("models/<int:pk>/rollback", model_api.model_rollback, name="model-rollback"),
]
