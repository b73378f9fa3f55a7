# One image for web, worker and beat. Terraform comes from the official release archive at build
# time (networked machines); the sandbox service reuses the image to run the moto server.
FROM python:3.11-slim-bookworm

# The archive's SHA-256 is pinned here (HashiCorp's terraform_1.11.4_SHA256SUMS lists it): a
# download that differs fails the build. Change both ARGs together.
ARG TERRAFORM_VERSION=1.11.4
ARG TERRAFORM_SHA256=1ce994251c00281d6845f0f268637ba50c0005657eb3cf096b92f753b42ef4dc
RUN apt-get update \
 && apt-get install -y --no-install-recommends curl unzip ca-certificates \
 && curl -fsSLo /tmp/tf.zip \
      "https://releases.hashicorp.com/terraform/${TERRAFORM_VERSION}/terraform_${TERRAFORM_VERSION}_linux_amd64.zip" \
 && echo "${TERRAFORM_SHA256}  /tmp/tf.zip" | sha256sum -c - \
 && unzip /tmp/tf.zip terraform -d /usr/local/bin \
 && rm /tmp/tf.zip && apt-get purge -y curl unzip && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 1000 portal
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN DEBUG=1 python manage.py collectstatic --no-input -v 0 && chown -R portal /app
USER portal

ENV PYTHONUNBUFFERED=1 PORTAL_VAR_DIR=/app/var
EXPOSE 8000
CMD ["gunicorn", "portal.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3"]
