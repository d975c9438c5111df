#!/usr/bin/env bash
# make test-cluster: dunning's production profile on this machine, for real.
#
#   1. PostgreSQL: the machine's binaries (apt-get install postgresql when
#      there are none), a throwaway cluster in a temporary folder on a
#      loopback port; the machine's own clusters are left alone.
#   2. deploy/setup-schema.sh with temporal-sql-tool: the `temporal` and
#      `temporal_visibility` databases, as docker-compose.yml's
#      temporal-schema does.
#   3. deploy/tls-certs.sh: a throwaway CA, the frontend's certificate and
#      client certificates for dunning, the setup (admin) and the server's
#      system worker.
#   4. temporal-server (built from the module proxy at the version the CLI
#      embeds) with deploy/temporal/cluster.yaml: all four services, on
#      PostgreSQL for persistence and visibility, the frontend taking
#      mutual TLS only.
#   5. deploy/setup-namespace.sh with the temporal CLI, twice (it must be
#      idempotent), with the admin certificate in TEMPORAL_TLS_*: the
#      namespace with 7 days' retention and dunning's search attributes, as
#      docker-compose.yml's temporal-setup does.
#   6. go test ./deploy -run TestCluster, with dunning's certificate in
#      TEMPORAL_TLS_*: a client without a certificate (or with one of
#      another CA) is refused; two workers and two webhooks (the real
#      binary) are driven through recoveries while one worker is killed.
#
# Everything it starts it stops, on success, failure or Ctrl-C. Logs are
# kept in .data/cluster/. The Makefile passes TEMPORAL_SERVER,
# TEMPORAL_SQL_TOOL, TEMPORAL_CLI and DUNNING_BIN. Ports (loopback): the
# server on CLUSTER_PORT_BASE (17233) to +3, +10 and +100 to +103, its
# metrics on CLUSTER_METRICS_PORT (17299), PostgreSQL on CLUSTER_PG_PORT
# (17432).
set -euo pipefail
cd "$(dirname "$0")/.."

: "${TEMPORAL_SERVER:?run through make test-cluster}"
: "${TEMPORAL_SQL_TOOL:?run through make test-cluster}"
: "${TEMPORAL_CLI:?run through make test-cluster}"
: "${DUNNING_BIN:?run through make test-cluster}"
export CLUSTER_PORT_BASE=${CLUSTER_PORT_BASE:-17233}
export CLUSTER_METRICS_PORT=${CLUSTER_METRICS_PORT:-17299}
export CLUSTER_PG_PORT=${CLUSTER_PG_PORT:-17432}
export CLUSTER_PG_USER=temporal
NAMESPACE=${CLUSTER_NAMESPACE:-dunning}
RETENTION=168h
# As in docker-compose.yml's temporal-setup; TestCluster checks the result
# against workflows/api.go.
SEARCH_ATTRIBUTES=StripeCustomerId=Keyword,StripeEventType=Keyword,RecoveryStage=Keyword

LOGS=$PWD/.data/cluster
mkdir -p "$LOGS"
rm -f "$LOGS"/*.log
started=$(date +%s)
say() { printf 'test-cluster [%3ss] %s\n' "$(($(date +%s) - started))" "$*"; }

# ---- cleanup: everything started below is recorded here and stopped here
PGTMP= PG= SERVER_PID= TLS_DIR=
cleanup() {
  status=$?
  trap - EXIT INT TERM
  if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    say "stopping temporal-server (pid $SERVER_PID)"
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 30); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 1; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [[ -n $PGTMP && -f $PGTMP/data/postmaster.pid ]]; then
    say "stopping PostgreSQL"
    as_pg "$PG/pg_ctl" -D "$PGTMP/data" -m fast -w stop >/dev/null || true
  fi
  if [[ -n $PGTMP ]]; then
    cp "$PGTMP/postgres.log" "$LOGS/postgres.log" 2>/dev/null || true
    rm -rf "$PGTMP"
  fi
  if [[ -n $TLS_DIR ]]; then rm -rf "$TLS_DIR"; fi
  if [[ $status -eq 0 ]]; then
    say "passed; logs in $LOGS"
  else
    say "FAILED (exit $status); logs in $LOGS"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- ports must be free: a half-started cluster would find someone else's
for port in "$CLUSTER_PG_PORT" "$CLUSTER_METRICS_PORT" \
  $(for d in 0 1 2 3 10 100 101 102 103; do echo $((CLUSTER_PORT_BASE + d)); done); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "test-cluster: port $port is in use; set CLUSTER_PORT_BASE, CLUSTER_METRICS_PORT or CLUSTER_PG_PORT" >&2
    exit 1
  fi
done

# ---- 1. PostgreSQL
as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }
# initdb refuses to run as root: as root, the cluster belongs to postgres,
# which may not enter this checkout (under /root, say): run from /.
as_pg() { if [[ $(id -u) -eq 0 ]]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi; }
find_pg() {
  local d
  for d in ${PG_BIN:-} $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [[ -x $d/initdb && -x $d/pg_ctl && -x $d/psql ]]; then echo "$d"; return 0; fi
  done
  return 1
}
if ! PG=$(find_pg); then
  say "PostgreSQL not found: apt-get install postgresql"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  # The package creates the machine's own cluster and may start it; this
  # target started it, so it stops it again.
  if command -v pg_lsclusters >/dev/null; then
    pg_lsclusters -h | awk '$4 == "online" { print $1, $2 }' | while read -r version name; do
      as_root pg_ctlcluster "$version" "$name" stop || true
    done
  fi
  PG=$(find_pg) || { echo "test-cluster: no PostgreSQL binaries after installing" >&2; exit 1; }
fi
say "PostgreSQL $("$PG/postgres" --version | awk '{ print $3 }') from $PG"

# As root, in /tmp rather than TMPDIR: the postgres user must reach it.
if [[ $(id -u) -eq 0 ]]; then PGTMP=$(mktemp -d /tmp/dunning-cluster-pg.XXXXXX); else PGTMP=$(mktemp -d); fi
chmod 0755 "$PGTMP"
export CLUSTER_PG_PASSWORD
CLUSTER_PG_PASSWORD=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
if [[ $(id -u) -eq 0 ]]; then chown postgres: "$PGTMP"; fi
as_pg "$PG/initdb" -D "$PGTMP/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
  -E UTF8 --locale=C.UTF-8 >"$LOGS/initdb.log" 2>&1 || { cat "$LOGS/initdb.log" >&2; exit 1; }
as_pg "$PG/pg_ctl" -D "$PGTMP/data" -l "$PGTMP/postgres.log" -w -t 60 \
  -o "-c listen_addresses=127.0.0.1 -c port=$CLUSTER_PG_PORT -c unix_socket_directories=$PGTMP -c max_connections=200" \
  start >/dev/null
as_pg "$PG/psql" -h "$PGTMP" -p "$CLUSTER_PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -q \
  -c "CREATE ROLE $CLUSTER_PG_USER LOGIN CREATEDB PASSWORD '$CLUSTER_PG_PASSWORD'"
say "PostgreSQL up on 127.0.0.1:$CLUSTER_PG_PORT (data in $PGTMP)"

# ---- 2. schemas
SQL_HOST=127.0.0.1 SQL_PORT=$CLUSTER_PG_PORT SQL_USER=$CLUSTER_PG_USER SQL_PASSWORD=$CLUSTER_PG_PASSWORD \
  TEMPORAL_SQL_TOOL=$TEMPORAL_SQL_TOOL deploy/setup-schema.sh >"$LOGS/setup-schema.log" 2>&1 ||
  { cat "$LOGS/setup-schema.log" >&2; exit 1; }
say "schemas set up with $("$TEMPORAL_SQL_TOOL" --version)"

# ---- 3. certificates: the frontend requires a client certificate of this CA
if ! command -v openssl >/dev/null; then
  say "openssl not found: apt-get install openssl"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl >/dev/null
fi
TLS_DIR=$(mktemp -d)
export CLUSTER_TLS_DIR=$TLS_DIR/pki
deploy/tls-certs.sh "$CLUSTER_TLS_DIR" >"$LOGS/tls-certs.log" 2>&1 || { cat "$LOGS/tls-certs.log" >&2; exit 1; }
say "certificates made in $CLUSTER_TLS_DIR ($(openssl version | awk '{ print $1, $2 }'))"
# What a client needs, minus its own certificate and key.
tls_env() { # client name
  echo TEMPORAL_TLS_SERVER_CA_CERT_PATH="$CLUSTER_TLS_DIR/ca.pem" TEMPORAL_TLS_SERVER_NAME=temporal-frontend \
    TEMPORAL_TLS_CLIENT_CERT_PATH="$CLUSTER_TLS_DIR/$1.pem" TEMPORAL_TLS_CLIENT_KEY_PATH="$CLUSTER_TLS_DIR/$1.key"
}

# ---- 4. the Temporal server
"$TEMPORAL_SERVER" --root / --config "$PWD/deploy/temporal" --env cluster --allow-no-auth start \
  >"$LOGS/temporal-server.log" 2>&1 &
SERVER_PID=$!
ADDRESS=127.0.0.1:$CLUSTER_PORT_BASE
say "temporal-server $("$TEMPORAL_SERVER" --version | awk '{ print $NF }') starting on $ADDRESS, mTLS (pid $SERVER_PID)"

# ---- 5. namespace and search attributes, twice, as the admin
for run in 1 2; do
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "test-cluster: temporal-server exited; the end of its log:" >&2
    tail -n 40 "$LOGS/temporal-server.log" >&2
    exit 1
  fi
  env $(tls_env admin) TEMPORAL_ADDRESS=$ADDRESS TEMPORAL_NAMESPACE=$NAMESPACE TEMPORAL_NAMESPACE_RETENTION=$RETENTION \
    DUNNING_SEARCH_ATTRIBUTES=$SEARCH_ATTRIBUTES TEMPORAL_CLI=$TEMPORAL_CLI \
    deploy/setup-namespace.sh >>"$LOGS/setup-namespace.log" 2>&1 ||
    { tail -n 40 "$LOGS/setup-namespace.log" >&2; exit 1; }
  say "namespace $NAMESPACE set up (run $run)"
done

# The frontend refuses the temporal CLI without a client certificate, even
# trusting the server, where the same command with the admin certificate
# works; TestCluster checks the same for the SDK. (TLS 1.3 reports the
# refusal after the handshake: the client may see "certificate required",
# a reset or a broken pipe.)
if ! env $(tls_env admin) "$TEMPORAL_CLI" --address "$ADDRESS" --command-timeout 15s operator cluster health \
  >"$LOGS/with-certificate.log" 2>&1; then
  echo "test-cluster: the frontend refused the admin certificate:" >&2
  cat "$LOGS/with-certificate.log" >&2
  exit 1
fi
if env TEMPORAL_TLS_SERVER_CA_CERT_PATH="$CLUSTER_TLS_DIR/ca.pem" TEMPORAL_TLS_SERVER_NAME=temporal-frontend \
  "$TEMPORAL_CLI" --address "$ADDRESS" --command-timeout 15s operator cluster health \
  >"$LOGS/without-certificate.log" 2>&1; then
  echo "test-cluster: the frontend answered a client without a certificate: mutual TLS is off" >&2
  exit 1
fi
say "a client without a certificate is refused: $(tail -n 1 "$LOGS/without-certificate.log")"

# ---- 6. dunning on it, with its own certificate
say "go test ./deploy -run TestCluster"
env $(tls_env dunning) DUNNING_CLUSTER_ADDRESS=$ADDRESS DUNNING_CLUSTER_NAMESPACE=$NAMESPACE DUNNING_CLUSTER_LOGS=$LOGS \
  DUNNING_BIN=$DUNNING_BIN go test -count=1 -timeout 15m -run '^TestCluster' -v ./deploy
