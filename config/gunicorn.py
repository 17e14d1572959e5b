"""gunicorn settings: ``gunicorn -c config/gunicorn.py config.wsgi``.

Every value can be set from the environment. Request limits: a request line of at most
8 KiB, at most 100 header fields of at most 8 KiB each (gunicorn answers more with 400 before
Django sees it); bodies are limited by Django (``DATA_UPLOAD_MAX_MEMORY_SIZE``), which answers
a larger one with a 413 problem. A worker that has not answered within ``GUNICORN_TIMEOUT``
seconds is replaced; workers are recycled after ``GUNICORN_MAX_REQUESTS`` requests (with
jitter) so no process grows for ever.
"""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", str(multiprocessing.cpu_count() * 2 + 1)))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "5000"))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", "500"))

limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190

# Logs to stdout as the app's own (JSON lines in production); no access log by default, since
# django-prometheus counts requests and the app logs what matters with its request id.
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
errorlog = "-"
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")


def child_exit(server, worker):
    """Prometheus multiprocess mode: a finished worker's live gauges are dropped."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
