#!/usr/bin/env bash
# Writes deploy/kubernetes/configmap.yaml from fluent-bit/fluent-bit.yaml, so the
# DaemonSet runs the very pipeline of the image (tests/deploy_kit.rs checks they match).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=deploy/kubernetes/configmap.yaml
{
  cat <<'HEADER'
# fluent-bit/fluent-bit.yaml, byte for byte (regenerate with deploy/tools/sync-configmap.sh).
# The DaemonSet mounts it at /fluent-bit/config/ and starts Fluent Bit with it.
apiVersion: v1
kind: ConfigMap
metadata:
  name: fluent-bit-config
  namespace: logging
  labels:
    app.kubernetes.io/name: fluent-bit
    app.kubernetes.io/part-of: firehose-fanout
data:
  fluent-bit.yaml: |
HEADER
  sed '/./s/^/    /' fluent-bit/fluent-bit.yaml
} >"$out"
echo "wrote $out"
