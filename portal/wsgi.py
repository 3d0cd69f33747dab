import os

from django.core.wsgi import get_wsgi_application

from portal.wsgi_input import large_body_reads

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
application = large_body_reads(get_wsgi_application())
