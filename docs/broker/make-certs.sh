#!/usr/bin/env bash
# Creates a private certificate authority and a server certificate for a Tandem broker,
# with the openssl command line tool (Debian: `apt-get install openssl`).
#
#   docs/broker/make-certs.sh OUT_DIR NAME [NAME...]
#
# NAME: each DNS name or IP address clients use to reach the broker (the host of their
# mqtts:// URL), e.g. `broker.example.org` or `192.0.2.10`; the first is also the subject.
# Writes to OUT_DIR (created if missing; existing files are kept, so the CA survives a new
# server certificate):
#   ca.key      the CA's private key: keep it offline, it can mint server certificates
#   ca.crt      the CA certificate: what clients trust (TlsTrust / the pairing offer)
#   server.key  the broker's private key (mosquitto.conf: keyfile)
#   server.crt  the broker's certificate, signed by the CA (mosquitto.conf: certfile); it
#               serves as a TLS client certificate too (clientAuth): the nodes of a NATS
#               cluster show it to each other on their routes (nats-node.conf)
# Keys are ECDSA P-256; the CA is valid 10 years, the server certificate 825 days.
set -euo pipefail

if [ $# -lt 2 ]; then
  echo "usage: $0 OUT_DIR NAME [NAME...]" >&2
  exit 2
fi
out=$1
shift
subject=$1
san=""
for name in "$@"; do
  if [[ $name =~ ^[0-9.]+$ || $name == *:* ]]; then
    san+="${san:+,}IP:$name"
  else
    san+="${san:+,}DNS:$name"
  fi
done

mkdir -p "$out"
cd "$out"
umask 077

if [ ! -f ca.key ]; then
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key
  openssl req -x509 -new -key ca.key -sha256 -days 3650 -subj "/CN=Tandem broker CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out ca.crt
fi

openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out server.key
openssl req -new -key server.key -subj "/CN=$subject" -out server.csr
printf '%s\n' \
  "basicConstraints=critical,CA:FALSE" \
  "keyUsage=critical,digitalSignature" \
  "extendedKeyUsage=serverAuth,clientAuth" \
  "subjectAltName=$san" >server.ext
openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -sha256 \
  -days 825 -extfile server.ext -out server.crt
rm -f server.csr server.ext
chmod 644 ca.crt server.crt
echo "wrote $(pwd)/ca.crt, server.crt, server.key (CA key: ca.key)"
