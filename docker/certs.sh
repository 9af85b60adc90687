#!/bin/bash
# The certs one-shot of docker-compose.yml (Elasticsearch image, as root): a CA and es01's HTTP and
# transport certificate made with elasticsearch-certutil (PEM), once; later runs keep them.
#
#   $CERTS_DIR (the certs volume; only this job and es01 mount it)
#     ca/ca.crt ca/ca.key        the CA (certutil ca --pem)
#     es01/es01.crt es01/es01.key  es01's certificate for the names es01, localhost, 127.0.0.1
#   $CA_DIR/ca.crt (the ca volume: the CA certificate alone, for the clients that verify es01:
#     Kibana and the aiswatch jobs; the keys never leave the certs volume)
#
# Environment: CERTS_DIR (default config/certs, below /usr/share/elasticsearch), CA_DIR (default /ca),
# CERTUTIL (default bin/elasticsearch-certutil), CERTS_OWNER (default root:root).
set -euo pipefail

cd /usr/share/elasticsearch 2>/dev/null || true
CERTS_DIR=${CERTS_DIR:-config/certs}
CA_DIR=${CA_DIR:-/ca}
CERTUTIL=${CERTUTIL:-bin/elasticsearch-certutil}
CERTS_OWNER=${CERTS_OWNER:-root:root}

if [[ ! -f $CERTS_DIR/ca/ca.crt || ! -f $CERTS_DIR/ca/ca.key ]]; then
  echo "certs: creating the CA"
  rm -f "$CERTS_DIR/ca.zip"
  "$CERTUTIL" ca --silent --pem -out "$CERTS_DIR/ca.zip"
  unzip -q -o "$CERTS_DIR/ca.zip" -d "$CERTS_DIR"
  rm -f "$CERTS_DIR/ca.zip" "$CERTS_DIR/es01/es01.crt"  # a new CA: es01's certificate is made again below
fi
if [[ ! -f $CERTS_DIR/es01/es01.crt || ! -f $CERTS_DIR/es01/es01.key ]]; then
  echo "certs: creating es01's certificate (es01, localhost, 127.0.0.1)"
  # es01: the name the other services use; localhost and 127.0.0.1: its own healthcheck and the
  # published port on the host
  cat > "$CERTS_DIR/instances.yml" <<'YAML'
instances:
  - name: es01
    dns:
      - es01
      - localhost
    ip:
      - 127.0.0.1
YAML
  rm -f "$CERTS_DIR/certs.zip"
  "$CERTUTIL" cert --silent --pem -out "$CERTS_DIR/certs.zip" --in "$CERTS_DIR/instances.yml" \
    --ca-cert "$CERTS_DIR/ca/ca.crt" --ca-key "$CERTS_DIR/ca/ca.key"
  unzip -q -o "$CERTS_DIR/certs.zip" -d "$CERTS_DIR"
  rm -f "$CERTS_DIR/certs.zip"
fi

# es01 runs as uid 1000 in group 0 (root): it reads the keys through the group, nobody else can
chown -R "$CERTS_OWNER" "$CERTS_DIR"
find "$CERTS_DIR" -type d -exec chmod 750 {} +
find "$CERTS_DIR" -type f -exec chmod 640 {} +
# the CA certificate is public: readable by Kibana (uid 1000, group 0) and aiswatch (uid 1000)
install -d -m 755 "$CA_DIR"
install -m 644 "$CERTS_DIR/ca/ca.crt" "$CA_DIR/ca.crt"
echo "certs: ready"
