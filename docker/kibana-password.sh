#!/bin/bash
# The kibana-password one-shot of docker-compose.yml: set the password of Kibana's service user
# (kibana_system) in Elasticsearch, as the elastic user.
#
# Only "Elasticsearch is not answering yet" is retried (no connection, HTTP 5xx). Any other answer
# is final and says why: 400 (e.g. a password under 6 characters) or 401 (ELASTIC_PASSWORD is not
# the one the esdata volume was first started with) would never succeed however long we wait.
#
# Environment: ELASTIC_PASSWORD, KIBANA_SYSTEM_PASSWORD; ES_URL (default http://es01:9200),
# WAIT_SECONDS (default 300), RETRY_SECONDS (default 2).
set -u
shopt -s nocasematch

ES_URL=${ES_URL:-http://es01:9200}
WAIT_SECONDS=${WAIT_SECONDS:-300}
RETRY_SECONDS=${RETRY_SECONDS:-2}

fail() {
  echo "kibana-password: $*" >&2
  exit 1
}

for name in ELASTIC_PASSWORD KIBANA_SYSTEM_PASSWORD; do
  value=${!name:-}
  [[ -n $value ]] || fail "$name is not set: copy .env.example to .env and set it"
  # the value is not printed: a real password that merely starts like the placeholder stays out of the logs
  [[ $value != change-me* ]] || fail "$name in .env is still the placeholder from .env.example: set a real password"
done
# Elasticsearch's own rule; checked here so the message needs no round trip
(( ${#KIBANA_SYSTEM_PASSWORD} >= 6 )) || fail "KIBANA_SYSTEM_PASSWORD must be at least 6 characters long"

# the password as a JSON string (backslashes and quotes escaped), sent on stdin rather than the command line
password=${KIBANA_SYSTEM_PASSWORD//\\/\\\\}
password=${password//\"/\\\"}
answer=$(mktemp)
trap 'rm -f "$answer"' EXIT

deadline=$((SECONDS + WAIT_SECONDS))
while :; do
  code=$(printf '{"password":"%s"}' "$password" |
    curl -s -o "$answer" -w '%{http_code}' --max-time 10 -X POST -u "elastic:${ELASTIC_PASSWORD}" \
      -H 'Content-Type: application/json' --data-binary @- "$ES_URL/_security/user/kibana_system/_password")
  case $code in
    200)
      echo "kibana_system password set"
      exit 0
      ;;
    000 | 5??) ;;  # no connection yet, or Elasticsearch not ready: try again
    401)
      fail "Elasticsearch refused the elastic user's password (HTTP 401). ELASTIC_PASSWORD only takes effect" \
        "on the first boot of the esdata volume: put back the password it was first started with, or start" \
        "over with an empty volume (docker compose down -v deletes all data)"
      ;;
    *)
      reason=$(grep -o '"reason" *: *"[^"]*"' "$answer" | head -n 1 | sed 's/^"reason" *: *//')
      fail "Elasticsearch refused to set the kibana_system password (HTTP $code${reason:+: $reason})"
      ;;
  esac
  (( SECONDS < deadline )) || fail "no answer from Elasticsearch at $ES_URL after ${WAIT_SECONDS}s (last: HTTP $code)"
  echo "waiting for Elasticsearch at $ES_URL (HTTP $code)"
  sleep "$RETRY_SECONDS"
done
