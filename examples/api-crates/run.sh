#!/usr/bin/env bash
# Builds the three crates, starts the server, and calls it with the CLI over SSH and through
# the hub. Exits non-zero if any call fails or `inventory-api` pulls in an SSH stack.
set -euo pipefail
cd "$(dirname "$0")/../.."
if cargo tree -q --locked -p inventory-api -e normal | grep -E '\b(russh|mio)\b'; then
  echo "inventory-api must build without russh or tokio's network"; exit 1
fi
# Built with the workspace's features, as the tests build it, so nothing is compiled again.
cargo build -q --locked --workspace --all-features --bin inventory-server --bin inventory-cli
bin="${CARGO_TARGET_DIR:-target}/debug"
keys=$(mktemp -d)
out="$keys/server.out"
"$bin/inventory-server" "$keys" > "$out" &
server=$!
trap 'kill $server 2>/dev/null; rm -rf "$keys"' EXIT
for _ in $(seq 100); do [ -s "$out" ] && break; sleep 0.1; done
read -r _ forward _ hub < "$out"
sleep 0.5   # the service registers with the hub
for target in "$forward" "$hub"; do
  echo "== inventory-cli $target"
  "$bin/inventory-cli" "$keys" "$target" | tee "$keys/cli.out"
  grep -q 'countdown \[3, 2, 1, 0\]' "$keys/cli.out"
done
echo "api crates: OK"
