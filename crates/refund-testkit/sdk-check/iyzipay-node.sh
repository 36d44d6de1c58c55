#!/usr/bin/env bash
# Runs the official iyzipay npm package, unmodified, against the iyzico simulator.
#
#   crates/refund-testkit/sdk-check/iyzipay-node.sh
#
# Opt-in (needs node >= 18 and npm; skips otherwise). Installs `iyzipay` (IYZIPAY_VERSION,
# default latest) into target/sdk-check/iyzipay-node, starts `cargo run -p refund-testkit
# --example sandbox`, then runs iyzipay-node.js: partial, repeated, full and v2 refunds,
# the reporting lookup, a cancel, a refused over-refund, and a refused wrong secret.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "skipped: node/npm not installed (the iyzipay SDK check needs both)"
    exit 0
fi

scratch="${CARGO_TARGET_DIR:-$root/target}/sdk-check/iyzipay-node"
mkdir -p "$scratch"
cp "$here/iyzipay-node.js" "$scratch/"
if [ ! -d "$scratch/node_modules/iyzipay" ]; then
    [ -f "$scratch/package.json" ] || echo '{"name":"iyzipay-sdk-check","private":true}' > "$scratch/package.json"
    (cd "$scratch" && npm install --no-audit --no-fund --silent "iyzipay@${IYZIPAY_VERSION:-latest}")
fi
echo "# iyzipay $(node -p "require('$scratch/node_modules/iyzipay/package.json').version")"

(cd "$root" && cargo build -q -p refund-testkit --example sandbox)
log="$scratch/sandbox.out"
"${CARGO_TARGET_DIR:-$root/target}/debug/examples/sandbox" >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT

for _ in $(seq 1 100); do
    [ -s "$log" ] && break
    sleep 0.1
done
line="$(head -n 1 "$log")"
case "$line" in
    "{"*) ;;
    *) echo "sandbox did not start: $line"; exit 1 ;;
esac

(cd "$scratch" && node iyzipay-node.js "$line")
