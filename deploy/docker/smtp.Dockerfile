# The development SMTP server (deploy/local/devsmtp.py): accepts every message, relays nothing,
# keeps each one as an .eml file in /var/mail/renewals (mount it to read them from outside).
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 python3-aiosmtpd \
 && rm -rf /var/lib/apt/lists/*
COPY devsmtp.py /usr/local/bin/devsmtp.py
ENV RENEWALS_SMTP_PORT=25
HEALTHCHECK --interval=1s --timeout=3s --retries=30 CMD bash -c 'exec 3<>/dev/tcp/127.0.0.1/$RENEWALS_SMTP_PORT'
CMD python3 /usr/local/bin/devsmtp.py --host 127.0.0.1 --port "$RENEWALS_SMTP_PORT" --maildir /var/mail/renewals
