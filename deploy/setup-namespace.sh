#!/bin/sh
# Makes a Temporal namespace fit for dunning: creates it if it is missing,
# raises the retention of closed workflows to at least
# TEMPORAL_NAMESPACE_RETENTION, and registers dunning's search attributes.
# Safe to run again and from several places at once: an existing namespace
# keeps its data, a longer retention an operator chose is kept (it is only
# ever raised), attributes already registered are left alone.
#
# The retention matters: an event's workflow ID is the Stripe event ID, and
# a redelivered event is recognised only while the closed workflow is kept.
# Stripe retries for 3 days, so dunning needs at least 7 (168h); the worker
# refuses a shorter TEMPORAL_NAMESPACE_RETENTION.
#
# Used by the temporal-setup service of docker-compose.yml (in the
# temporalio/admin-tools image) and by `make test-cluster`. Reads:
#   TEMPORAL_ADDRESS               the frontend, host:port
#   TEMPORAL_NAMESPACE             the namespace
#   TEMPORAL_NAMESPACE_RETENTION   e.g. 168h
#   DUNNING_SEARCH_ATTRIBUTES      Name=Type,… e.g. StripeCustomerId=Keyword,…
#   TEMPORAL_CLI                   the temporal CLI (default: temporal on PATH)
# and, when the frontend takes TLS, the temporal CLI reads the rest of the
# connection from the environment itself, as dunning does (compose: none,
# plaintext inside the stack; make test-cluster: an admin certificate):
#   TEMPORAL_TLS_CLIENT_CERT_PATH, TEMPORAL_TLS_CLIENT_KEY_PATH   client certificate and key
#   TEMPORAL_TLS_SERVER_CA_CERT_PATH, TEMPORAL_TLS_SERVER_NAME    how to check the frontend
#   TEMPORAL_API_KEY, TEMPORAL_TLS, TEMPORAL_PROFILE, TEMPORAL_CONFIG_FILE
set -eu

: "${TEMPORAL_ADDRESS:?set TEMPORAL_ADDRESS to the Temporal frontend, host:port}"
: "${TEMPORAL_NAMESPACE:?set TEMPORAL_NAMESPACE}"
: "${TEMPORAL_NAMESPACE_RETENTION:?set TEMPORAL_NAMESPACE_RETENTION, at least 168h}"
: "${DUNNING_SEARCH_ATTRIBUTES:?set DUNNING_SEARCH_ATTRIBUTES to Name=Type,…}"
cli=${TEMPORAL_CLI:-temporal}
ns=$TEMPORAL_NAMESPACE
t() { "$cli" --address "$TEMPORAL_ADDRESS" "$@"; }

# seconds DURATION: a duration such as 168h, 7d, 1h30m or the server's
# 604800s, in whole seconds; empty when it cannot be read.
seconds() {
  echo "$1" | awk '{
    s = $0; total = 0
    if (s !~ /^([0-9]+(\.[0-9]+)?(d|h|m|s))+$/) { exit }
    while (match(s, /^[0-9]+(\.[0-9]+)?(d|h|m|s)/)) {
      part = substr(s, 1, RLENGTH); s = substr(s, RLENGTH + 1)
      unit = substr(part, length(part)); n = substr(part, 1, length(part) - 1) + 0
      total += n * (unit == "d" ? 86400 : unit == "h" ? 3600 : unit == "m" ? 60 : 1)
    }
    printf "%d\n", total
  }'
}
want=$(seconds "$TEMPORAL_NAMESPACE_RETENTION")
if [ -z "$want" ]; then
  echo "temporal setup: TEMPORAL_NAMESPACE_RETENTION=$TEMPORAL_NAMESPACE_RETENTION is not a duration such as 168h or 7d" >&2
  exit 1
fi

# The frontend answers before the other services have joined; wait until
# the cluster reports itself serving.
tries=0
until t operator cluster health >/dev/null 2>&1; do
  tries=$((tries + 1))
  if [ "$tries" -ge 90 ]; then
    echo "temporal setup: $TEMPORAL_ADDRESS not healthy after 3 minutes" >&2
    t operator cluster health
    exit 1
  fi
  sleep 2
done

if described=$(t operator namespace describe --namespace "$ns" --output json 2>/dev/null); then
  # "workflowExecutionRetentionTtl": "604800s"
  have=$(echo "$described" | sed -n 's/.*"workflowExecutionRetentionTtl"[^"]*"\([^"]*\)".*/\1/p' | head -n 1)
  have_s=$(seconds "$have")
  if [ -z "$have_s" ]; then
    echo "temporal setup: cannot read the retention of namespace $ns (got \"$have\"); it is left as it is" >&2
    exit 1
  elif [ "$have_s" -lt "$want" ]; then
    t operator namespace update --namespace "$ns" --retention "$TEMPORAL_NAMESPACE_RETENTION"
    echo "temporal setup: retention of namespace $ns raised from $have to $TEMPORAL_NAMESPACE_RETENTION"
  else
    echo "temporal setup: namespace $ns keeps closed workflows for $have, at least $TEMPORAL_NAMESPACE_RETENTION: left as it is"
  fi
else
  t operator namespace create --namespace "$ns" --retention "$TEMPORAL_NAMESPACE_RETENTION" \
    --description "dunning: Stripe payment recovery"
fi

# A new namespace reaches every service of the cluster within seconds;
# search attributes can only be added once it has.
tries=0
until t operator search-attribute list --namespace "$ns" >/dev/null 2>&1; do
  tries=$((tries + 1))
  if [ "$tries" -ge 60 ]; then
    echo "temporal setup: namespace $ns not usable after 60s" >&2
    exit 1
  fi
  sleep 1
done

for attr in $(echo "$DUNNING_SEARCH_ATTRIBUTES" | tr ',' ' '); do
  t operator search-attribute create --namespace "$ns" --name "${attr%%=*}" --type "${attr#*=}"
done

t operator namespace describe --namespace "$ns"
t operator search-attribute list --namespace "$ns"
echo "temporal setup: namespace $ns ready (retention at least $TEMPORAL_NAMESPACE_RETENTION)"
