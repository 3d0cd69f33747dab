from django.urls import path

from portal.studies import views

urlpatterns = [
    path("me", views.MeView.as_view(), name="me"),
    path("studies/upload", views.UploadView.as_view(), name="study-upload"),
    path("uploads", views.UploadBatchListView.as_view(), name="upload-list"),
    path("uploads/<uuid:pk>", views.UploadBatchDetailView.as_view(), name="upload-detail"),
    path("studies", views.StudyListView.as_view(), name="study-list"),
    path("studies/<str:study_uid>", views.StudyDetailView.as_view(), name="study-detail"),
    path("studies/<str:study_uid>/access", views.StudyAccessLogView.as_view(), name="study-access-log"),
    path("studies/<str:study_uid>/withdraw", views.StudyWithdrawView.as_view(), name="study-withdraw"),
    path("studies/<str:study_uid>/restore", views.StudyRestoreView.as_view(), name="study-restore"),
    path("studies/<str:study_uid>/report.pdf", views.StudyReportView.as_view(), name="study-report"),
    path("series/<str:series_uid>", views.SeriesDetailView.as_view(), name="series-detail"),
    path("series/<str:series_uid>/scores", views.SeriesScoresView.as_view(), name="series-scores"),
    path("series/<str:series_uid>/rescore", views.SeriesRescoreView.as_view(), name="series-rescore"),
    path("series/<str:series_uid>/heatmap/<int:slice_index>.png", views.HeatmapView.as_view(), name="heatmap"),
    path("jobs", views.JobListView.as_view(), name="job-list"),
    path("jobs/<int:pk>", views.JobDetailView.as_view(), name="job-detail"),
]
