#!/bin/sh
# Makes the certificates of a Temporal frontend with mutual TLS, with
# openssl, into DIR (created, private to its owner):
#
#   ca.pem, ca.key                 a certificate authority, for this DIR only
#   frontend.pem, frontend.key     the frontend's server certificate, for
#                                  TLS_SERVER_NAME (temporal-frontend), localhost,
#                                  127.0.0.1 and the names in TLS_EXTRA_SANS
#   NAME.pem, NAME.key             a client certificate (CN=NAME) for each
#                                  NAME in TLS_CLIENTS
#
# Keys are ECDSA P-256, certificates last TLS_DAYS days (2). `make
# test-cluster` runs it for a throwaway cluster: the frontend requires a
# client certificate from this CA, and every client (dunning's processes,
# the temporal CLI, the server's own system worker) presents one.
#
#   deploy/tls-certs.sh DIR
#   TLS_CLIENTS            client names (default: dunning admin system-worker)
#   TLS_SERVER_NAME        the name clients check the frontend as (temporal-frontend)
#   TLS_EXTRA_SANS         more subjectAltName entries, e.g. DNS:temporal,IP:10.0.0.5
set -eu

dir=${1:?usage: deploy/tls-certs.sh DIR}
days=${TLS_DAYS:-2}
server_name=${TLS_SERVER_NAME:-temporal-frontend}
clients=${TLS_CLIENTS:-dunning admin system-worker}
sans="DNS:$server_name,DNS:localhost,IP:127.0.0.1${TLS_EXTRA_SANS:+,$TLS_EXTRA_SANS}"
command -v openssl >/dev/null || { echo "tls-certs: openssl not found (apt-get install openssl)" >&2; exit 1; }

umask 077
mkdir -p "$dir"
cd "$dir"

serial() { od -An -tx1 -N16 /dev/urandom | tr -d ' \n'; }

openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
  -keyout ca.key -out ca.pem -days "$days" -subj "/CN=dunning test CA $(serial | cut -c1-8)" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null

# leaf NAME CN EXTENDED_KEY_USAGE [SANS]
leaf() {
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature"
    echo "extendedKeyUsage=$3"
    if [ -n "${4:-}" ]; then echo "subjectAltName=$4"; fi
  } >"$1.ext"
  openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
    -keyout "$1.key" -out "$1.csr" -subj "/CN=$2" 2>/dev/null
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -set_serial "0x$(serial)" \
    -days "$days" -extfile "$1.ext" -out "$1.pem" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}

leaf frontend "$server_name" serverAuth "$sans"
for name in $clients; do
  leaf "$name" "$name" clientAuth
done
# The certificates are public; the keys stay private.
chmod 0644 ./*.pem
echo "tls-certs: CA, frontend ($sans) and clients ($clients) in $dir"
