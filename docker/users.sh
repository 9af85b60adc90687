#!/bin/bash
# The users one-shot of docker-compose.yml (Elasticsearch image, as root), as the elastic user:
# - sets the password of Kibana's service user, kibana_system;
# - puts the aiswatch roles, one a job: $ROLES_DIR/<role>.json is the body of PUT /_security/role/<role>;
# - puts one user a job (aiswatch_ingest for the daemon, aiswatch_detect, aiswatch_setup), each with
#   the role of the same name and a password generated on the first run and kept in that job's
#   credentials volume, $CREDENTIALS_DIR/<job>/password (mode 0400, owned by the aiswatch image's user):
#   only that job mounts it. A rerun keeps the passwords and puts the roles and users again.
#
# No password is on a command line: curl reads the elastic user's credentials from a config file that
# only root can read, and every request body (passwords included) from its standard input.
#
# Only "Elasticsearch is not answering yet" is retried (no connection, HTTP 5xx). Any other answer is
# final and says why: 400 (e.g. a password under 6 characters) or 401 (ELASTIC_PASSWORD is not the one
# the esdata volume was first started with) would never succeed however long we wait, nor would a
# certificate that ES_CA does not verify.
#
# Environment: ELASTIC_PASSWORD, KIBANA_SYSTEM_PASSWORD; ES_URL (default https://es01:9200), ES_CA (the
# CA certificate, default /ca/ca.crt; empty: no --cacert), ROLES_DIR (default /usr/local/share/aiswatch/roles),
# JOBS (default "ingest detect setup"), CREDENTIALS_DIR (default /credentials), CREDENTIALS_OWNER
# (default 1000:1000, the aiswatch image's user), WAIT_SECONDS (default 300), RETRY_SECONDS (default 2).
set -u
shopt -s nocasematch nullglob

ES_URL=${ES_URL:-https://es01:9200}
ES_CA=${ES_CA-/ca/ca.crt}
ROLES_DIR=${ROLES_DIR:-/usr/local/share/aiswatch/roles}
JOBS=${JOBS:-ingest detect setup}
CREDENTIALS_DIR=${CREDENTIALS_DIR:-/credentials}
CREDENTIALS_OWNER=${CREDENTIALS_OWNER:-1000:1000}
WAIT_SECONDS=${WAIT_SECONDS:-300}
RETRY_SECONDS=${RETRY_SECONDS:-2}

fail() {
  echo "users: $*" >&2
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
[[ -z $ES_CA || -r $ES_CA ]] || fail "no CA certificate at $ES_CA (the certs job writes it)"

umask 077
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# curl's config file: the elastic user's credentials as a header (base64 needs no quoting in it)
printf 'header = "Authorization: Basic %s"\n' "$(printf 'elastic:%s' "$ELASTIC_PASSWORD" | base64 -w0)" > "$work/auth"
tls=()
[[ -n $ES_CA ]] && tls=(--cacert "$ES_CA")

# a string as a JSON string's contents: backslashes and quotes escaped
json_string() {
  local s=${1//\\/\\\\}
  printf '%s' "${s//\"/\\\"}"
}

# request METHOD PATH WHAT: send the body on stdin as the elastic user; retry while Elasticsearch is not
# answering, fail saying WHAT on any other refusal
request() {
  local method=$1 path=$2 what=$3 body code rc reason deadline=$((SECONDS + WAIT_SECONDS))
  body=$(cat)
  while :; do
    code=$(printf '%s' "$body" |
      curl -s -o "$work/answer" -w '%{http_code}' --max-time 10 -X "$method" -K "$work/auth" "${tls[@]}" \
        -H 'Content-Type: application/json' --data-binary @- "$ES_URL$path")
    rc=$?
    case $rc in
      35 | 51 | 58 | 60 | 77 | 83)
        fail "TLS with Elasticsearch at $ES_URL failed (curl exit $rc): is $ES_CA the CA that signed its certificate," \
          "and does the certificate name the host? (the certs job makes both)" ;;
    esac
    case $code in
      200 | 201) return 0 ;;
      000 | 5??) ;;  # no connection yet, or Elasticsearch not ready: try again
      401)
        fail "Elasticsearch refused the elastic user's password (HTTP 401). ELASTIC_PASSWORD only takes effect" \
          "on the first boot of the esdata volume: put back the password it was first started with, or start" \
          "over with an empty volume (docker compose down -v deletes all data)"
        ;;
      *)
        reason=$(grep -o '"reason" *: *"[^"]*"' "$work/answer" | head -n 1 | sed 's/^"reason" *: *//')
        fail "Elasticsearch refused to $what (HTTP $code${reason:+: $reason})"
        ;;
    esac
    (( SECONDS < deadline )) || fail "no answer from Elasticsearch at $ES_URL after ${WAIT_SECONDS}s (last: HTTP $code)"
    echo "waiting for Elasticsearch at $ES_URL (HTTP $code)"
    sleep "$RETRY_SECONDS"
  done
}

# the job's password: the one in its credentials volume, or a new random one written there first
job_password() {
  local dir=$CREDENTIALS_DIR/$1 password
  [[ -d $dir ]] || fail "no credentials volume for the $1 job at $dir"
  if [[ ! -s $dir/password ]]; then
    password=$(head -c 48 /dev/urandom | base64 -w0 | tr -dc 'A-Za-z0-9' | head -c 32)
    (( ${#password} >= 24 )) || fail "could not generate a password for the $1 job"
    printf '%s\n' "$password" > "$dir/password.new" && mv "$dir/password.new" "$dir/password" ||
      fail "could not write $dir/password"
    echo "users: generated the $1 job's password" >&2
  fi
  chown "$CREDENTIALS_OWNER" "$dir" "$dir/password" && chmod 700 "$dir" && chmod 400 "$dir/password" ||
    fail "could not give $dir/password to $CREDENTIALS_OWNER"
  password=$(< "$dir/password")
  (( ${#password} >= 6 )) || fail "$dir/password is shorter than the 6 characters Elasticsearch requires"
  printf '%s' "$password"
}

request POST /_security/user/kibana_system/_password "set the kibana_system password" \
  <<< "{\"password\":\"$(json_string "$KIBANA_SYSTEM_PASSWORD")\"}"
echo "kibana_system password set"

roles=("$ROLES_DIR"/*.json)
(( ${#roles[@]} )) || fail "no role definitions (*.json) in $ROLES_DIR"
for file in "${roles[@]}"; do
  role=$(basename "$file" .json)
  request PUT "/_security/role/$role" "put the role $role" < "$file"
  echo "role $role"
done

for job in $JOBS; do
  user=aiswatch_$job
  [[ -f $ROLES_DIR/$user.json ]] || fail "no role $user for the $job job in $ROLES_DIR"
  password=$(job_password "$job") || exit 1
  request PUT "/_security/user/$user" "put the user $user" <<< "{\"password\":\"$(json_string "$password")\",\
\"roles\":[\"$user\"],\"full_name\":\"aiswatch $job job\",\"metadata\":{\"managed_by\":\"aiswatch\"}}"
  echo "user $user (role $user), password in the $job job's credentials volume"
done
