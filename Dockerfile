FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY service ./service
COPY ingest ./ingest
COPY realtime ./realtime
COPY reporting ./reporting
COPY migrations ./migrations
RUN pip install --no-cache-dir . && useradd --create-home staypulse
USER staypulse
CMD ["staypulse", "api", "--host", "0.0.0.0", "--port", "8000"]
