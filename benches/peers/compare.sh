#!/usr/bin/env bash
# Side by side, in one run, against the same `refund sandbox` iyzico simulator:
#   (a) wrk replaying one fixed, pre-signed, valid POST /payment/refund (the ceiling);
#   (b) ours: `refund bench --provider iyzico --base-url …` (signing, JSON, parsing, receipts);
#   (c) the official `iyzipay` npm SDK, driven by iyzipay-driver.js with C promises in flight.
#
#   bash benches/peers/compare.sh [--requests N] [--concurrency C] [--duration 10s]
#
# Defaults: N=10000, C=64, wrk for 10s with 2 threads and C connections. A missing peer (wrk,
# node/npm, curl) is reported as skipped; the script still exits 0. The sandbox is killed on exit.
# The ledger is reset (POST /__sandbox/reset) before each peer so none pays for another's
# refunds. The SDK is installed into target/peers/iyzipay-node (IYZIPAY_VERSION, default latest).
set -uo pipefail

requests=10000
concurrency=64
duration=10s
while [ $# -gt 0 ]; do
    case "$1" in
        --requests) requests="$2"; shift 2 ;;
        --concurrency) concurrency="$2"; shift 2 ;;
        --duration) duration="$2"; shift 2 ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
work="$target/peers"
mkdir -p "$work"

echo "# machine: $(nproc) cores; $(uptime)"
echo "# building refund (release)"
(cd "$root" && cargo build -q --release -p refund-cli) || { echo "build failed"; exit 1; }
bin="$target/release/refund"

"$bin" sandbox >"$work/sandbox.out" 2>"$work/sandbox.err" &
sandbox_pid=$!
trap 'kill "$sandbox_pid" 2>/dev/null || true; wait "$sandbox_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
    grep -q '^IYZICO_SECRET_KEY=' "$work/sandbox.out" 2>/dev/null && break
    sleep 0.1
done
if ! grep -q '^IYZICO_SECRET_KEY=' "$work/sandbox.out"; then
    echo "sandbox did not start:"; cat "$work/sandbox.out" "$work/sandbox.err"; exit 1
fi
iyzico_url="$(sed -n 's/^iyzico //p' "$work/sandbox.out")"
IYZICO_API_KEY="$(sed -n 's/^IYZICO_API_KEY=//p' "$work/sandbox.out")"
IYZICO_SECRET_KEY="$(sed -n 's/^IYZICO_SECRET_KEY=//p' "$work/sandbox.out")"
export IYZICO_API_KEY IYZICO_SECRET_KEY
echo "# sandbox: iyzico simulator at $iyzico_url (pid $sandbox_pid)"

reset() { curl -s -o /dev/null -X POST -H 'content-type: application/json' -d '{}' "$iyzico_url/__sandbox/reset"; }

wrk_rate=""; ours_rate=""; sdk_rate=""
wrk_note="skipped"; ours_note=""; sdk_note="skipped"

# (a) wrk: one fixed valid refund request, replayed.
if ! command -v wrk >/dev/null 2>&1; then
    wrk_note="skipped: wrk not installed (apt-get install -y wrk)"
elif ! command -v curl >/dev/null 2>&1; then
    wrk_note="skipped: curl not installed (needed to seed the payment)"
else
    reset
    seeded="$(curl -s -X POST -H 'content-type: application/json' \
        -d '{"currency":"TRY","items":[{"price":"1000000.0"}]}' "$iyzico_url/__sandbox/payments")"
    tx_id="$(printf '%s' "$seeded" | sed -n 's/.*"paymentTransactionId":"\([^"]*\)".*/\1/p')"
    body="{\"locale\":\"tr\",\"conversationId\":\"wrk-fixed\",\"paymentTransactionId\":\"$tx_id\",\"price\":\"0.01\",\"currency\":\"TRY\",\"ip\":\"85.34.78.112\"}"
    rnd="wrkfixedrandomkey123"
    auth="$("$bin" iyzico auth-header --random-key "$rnd" --path /payment/refund --body "$body")"
    lua="$work/refund.lua"
    cat >"$lua" <<EOF
wrk.method = "POST"
wrk.path = "/payment/refund"
wrk.body = [[$body]]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "$auth"
wrk.headers["x-iyzi-rnd"] = "$rnd"
EOF
    check() {
        curl -s -X POST -H 'content-type: application/json' -H "Authorization: $auth" \
            -H "x-iyzi-rnd: $rnd" --data-binary "$body" "$iyzico_url/payment/refund"
    }
    # The replayed request must be a valid refund, before and after the run.
    if [ -z "$tx_id" ] || ! check | grep -q '"status":"success"'; then
        wrk_note="skipped: the fixed request was not accepted ($(check | head -c 200))"
    else
        echo "# (a) wrk -t2 -c$concurrency -d$duration POST /payment/refund (fixed, pre-signed, valid)"
        wrk -t2 -c"$concurrency" -d"$duration" -s "$lua" "$iyzico_url" | tee "$work/wrk.out"
        wrk_rate="$(sed -n 's/^Requests\/sec:[[:space:]]*\([0-9.]*\).*/\1/p' "$work/wrk.out")"
        wrk_note="wrk $(wrk --version 2>&1 | head -n 1 | awk '{print $2}')"
        if grep -q 'Non-2xx\|Socket errors' "$work/wrk.out"; then
            wrk_note="$wrk_note; WARNING: errors reported above"
        fi
        if ! check | grep -q '"status":"success"'; then
            wrk_note="$wrk_note; WARNING: request no longer accepted after the run"
        fi
    fi
fi

# (b) ours.
reset
echo "# (b) refund bench --provider iyzico --base-url $iyzico_url --requests $requests --concurrency $concurrency"
"$bin" bench --provider iyzico --base-url "$iyzico_url" --requests "$requests" --concurrency "$concurrency" \
    >"$work/ours.out"
ours_rc=$?
cat "$work/ours.out"
ours_json="$(tail -n 1 "$work/ours.out")"
ours_rate="$(printf '%s' "$ours_json" | sed -n 's/.*"refunds_per_sec":\([0-9.]*\).*/\1/p')"
ours_errors="$(printf '%s' "$ours_json" | sed -n 's/.*"errors":\([0-9]*\).*/\1/p')"
ours_note="exit $ours_rc, errors ${ours_errors:-?}"

# (c) the official iyzipay npm SDK.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    sdk_note="skipped: node/npm not installed"
else
    scratch="$work/iyzipay-node"
    mkdir -p "$scratch"
    cp "$here/iyzipay-driver.js" "$scratch/"
    if [ ! -d "$scratch/node_modules/iyzipay" ]; then
        [ -f "$scratch/package.json" ] || echo '{"name":"iyzipay-peer-bench","private":true}' >"$scratch/package.json"
        (cd "$scratch" && npm install --no-audit --no-fund --silent "iyzipay@${IYZIPAY_VERSION:-latest}") \
            || sdk_note="skipped: npm install iyzipay failed"
    fi
    if [ -d "$scratch/node_modules/iyzipay" ]; then
        version="$(node -p "require('$scratch/node_modules/iyzipay/package.json').version")"
        reset
        echo "# (c) iyzipay $version (node $(node --version)): $requests refunds, $concurrency in flight"
        (cd "$scratch" && node iyzipay-driver.js "$iyzico_url" "$requests" "$concurrency") >"$work/sdk.out"
        sdk_rc=$?
        cat "$work/sdk.out"
        sdk_json="$(tail -n 1 "$work/sdk.out")"
        sdk_rate="$(printf '%s' "$sdk_json" | sed -n 's/.*"refunds_per_sec":\([0-9.]*\).*/\1/p')"
        sdk_errors="$(printf '%s' "$sdk_json" | sed -n 's/.*"errors":\([0-9]*\).*/\1/p')"
        sdk_note="iyzipay $version, exit $sdk_rc, errors ${sdk_errors:-?}"
    fi
fi

ratio() { # ratio A B FORMAT(pct|x)
    if [ -n "$1" ] && [ -n "$2" ]; then
        awk -v a="$1" -v b="$2" -v f="$3" 'BEGIN { if (b > 0) { if (f == "pct") printf "%.0f %%", 100 * a / b; else printf "%.1f ×", a / b } else print "n/a" }'
    else
        echo "n/a"
    fi
}
fmt() { if [ -n "$1" ]; then awk -v v="$1" 'BEGIN { printf "%.0f", v }'; else echo "skipped"; fi; }

echo
echo "# iyzico POST /payment/refund, one sandbox, N=$requests, C=$concurrency; $(uptime)"
echo "| wrk req/s | ours refunds/s | SDK refunds/s | ours/wrk | ours/SDK |"
echo "|----------:|---------------:|--------------:|---------:|---------:|"
echo "| $(fmt "$wrk_rate") | $(fmt "$ours_rate") | $(fmt "$sdk_rate") | $(ratio "$ours_rate" "$wrk_rate" pct) | $(ratio "$ours_rate" "$sdk_rate" x) |"
echo
echo "# wrk: $wrk_note"
echo "# ours: $ours_note"
echo "# SDK: $sdk_note"
echo "# targets: ours/wrk >= 80 %, ours/SDK >= 3.0 ×"
exit 0
