# The service's one image: web, worker and beat run from it with different commands
# (compose.yaml). Everything it needs is installed at build time; nothing downloads at run time.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 DJANGO_SETTINGS_MODULE=config.settings.default
WORKDIR /app

COPY . .
RUN pip install --no-cache-dir . \
    && DEBUG=1 DATABASE_URL=postgres://build@localhost/build python manage.py collectstatic --noinput \
    && useradd --system --uid 10001 loyalty
USER loyalty

EXPOSE 8000
CMD ["gunicorn", "-c", "config/gunicorn.py", "config.wsgi"]
