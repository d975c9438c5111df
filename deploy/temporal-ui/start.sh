#!/bin/sh
# Starts the Temporal UI of docker-compose.yml (service temporal-ui) on a
# read-only file system: its configuration is written from the service's
# environment into /tmp (a tmpfs), not next to the binary as the image's
# own start script does, then the image's ui-server runs on it. Reads:
#   TEMPORAL_ADDRESS             the Temporal frontend, host:port
#   TEMPORAL_DEFAULT_NAMESPACE   the namespace the UI opens on
#   TEMPORAL_CORS_ORIGINS        the origin the browser reaches the UI at
#   TEMPORAL_UI_CONFIG_DIR       where to write the configuration (/tmp/ui-config)
#   TEMPORAL_UI_SERVER           the server binary (./ui-server, in the image's workdir)
set -eu

: "${TEMPORAL_ADDRESS:?set TEMPORAL_ADDRESS to the Temporal frontend, host:port}"
: "${TEMPORAL_CORS_ORIGINS:?set TEMPORAL_CORS_ORIGINS to the UI's origin, e.g. http://localhost:8233}"
dir=${TEMPORAL_UI_CONFIG_DIR:-/tmp/ui-config}
mkdir -p "$dir"
cat >"$dir/compose.yaml" <<CONFIG
temporalGrpcAddress: "$TEMPORAL_ADDRESS"
host: 0.0.0.0
port: 8080
enableUi: true
defaultNamespace: "${TEMPORAL_DEFAULT_NAMESPACE:-default}"
notifyOnNewVersion: false
refreshInterval: 1m
cors:
  allowOrigins:
    - "$TEMPORAL_CORS_ORIGINS"
CONFIG
exec "${TEMPORAL_UI_SERVER:-./ui-server}" --root / --config "$dir" --env compose start
