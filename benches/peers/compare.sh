#!/usr/bin/env bash
# Side by side, in one run, against the same `refund sandbox` iyzico simulator:
#   (a) wrk replaying one fixed, pre-signed, valid POST /payment/refund (the ceiling);
#   (b) the reqwest floor: the HTTP client our providers build, replaying the same fixed
#       request and reading every answer, with no signing, JSON or receipts
#       (crates/refund-cli/examples/reqwest_floor.rs): what any reqwest-based client pays;
#   (c) ours: `refund bench --provider iyzico --base-url …` (validation, signing, JSON,
#       parsing and checking the answer, receipts);
#   (d) the official `iyzipay` npm SDK, driven by iyzipay-driver.js with C promises in flight.
#
#   bash benches/peers/compare.sh [--requests N] [--concurrency C] [--duration 8s]
#                                 [--rounds R] [--shared]
#
# Defaults: N=100000 (10000 for the SDK, which is slow), C=64, wrk for 8s, R=3 rounds.
# Placement: with taskset and at least 2 cores, the sandbox runs on CPU 0 and every client on
# CPU 1 (wrk with one thread), so each client has one core to itself and the server another;
# `--shared` leaves them all on every core, as the first figures in docs/performance.md were
# taken. The peers run one after the other, round after round, so a slow minute of a shared
# machine hits all of them; the table shows every round and the medians.
# A missing peer (wrk, node/npm, curl) is reported as skipped; the script still exits 0. The
# sandbox is killed on exit. The ledger is reset (POST /__sandbox/reset) before each peer. The SDK
# is installed into target/peers/iyzipay-node (IYZIPAY_VERSION, default latest).
set -uo pipefail

requests=100000
sdk_requests=10000
concurrency=64
duration=8s
rounds=3
shared=0
while [ $# -gt 0 ]; do
    case "$1" in
        --requests) requests="$2"; sdk_requests="$2"; shift 2 ;;
        --concurrency) concurrency="$2"; shift 2 ;;
        --duration) duration="$2"; shift 2 ;;
        --rounds) rounds="$2"; shift 2 ;;
        --shared) shared=1; shift ;;
        -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
[ "$sdk_requests" -gt 10000 ] && sdk_requests=10000

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
work="$target/peers"
mkdir -p "$work"

server_cpu=(); client_cpu=(); wrk_threads=2; placement="shared: every process on every core"
if [ "$shared" = 0 ] && command -v taskset >/dev/null 2>&1 && [ "$(nproc)" -ge 2 ]; then
    server_cpu=(taskset -c 0); client_cpu=(taskset -c 1); wrk_threads=1
    placement="pinned: sandbox on CPU 0, each client on CPU 1"
fi

echo "# machine: $(nproc) cores; $(uptime)"
echo "# placement: $placement"
echo "# building refund and the reqwest floor (release)"
(cd "$root" && cargo build -q --release -p refund-cli --bin refund --example reqwest_floor) \
    || { echo "build failed"; exit 1; }
bin="$target/release/refund"
floor="$target/release/examples/reqwest_floor"

"${server_cpu[@]}" "$bin" sandbox --env-file "$work/sandbox.env" >"$work/sandbox.out" 2>"$work/sandbox.err" &
sandbox_pid=$!
trap 'kill "$sandbox_pid" 2>/dev/null || true; wait "$sandbox_pid" 2>/dev/null || true' EXIT
# The sandbox writes the file (shell-quoted `export NAME='value'` lines) once both simulators listen.
for _ in $(seq 1 100); do
    [ -s "$work/sandbox.env" ] && break
    sleep 0.1
done
if [ ! -s "$work/sandbox.env" ]; then
    echo "sandbox did not start:"; cat "$work/sandbox.out" "$work/sandbox.err"; exit 1
fi
. "$work/sandbox.env"
iyzico_url="$IYZICO_BASE_URL"
export IYZICO_API_KEY IYZICO_SECRET_KEY
echo "# sandbox: iyzico simulator at $iyzico_url (pid $sandbox_pid)"

have_curl=0; command -v curl >/dev/null 2>&1 && have_curl=1
reset() { curl -s -o /dev/null -X POST -H 'content-type: application/json' -d '{}' "$iyzico_url/__sandbox/reset"; }
json_field() { printf '%s' "$2" | sed -n "s/.*\"$1\":\\([0-9.]*\\).*/\\1/p"; }
# record LABEL UNIT RATE_KEY OUTPUT ARRAY: the rate and errors from OUTPUT's last (JSON) line.
record() {
    local -n rates_ref="$5"
    local line rate errors
    line="$(tail -n 1 "$4")"
    rate="$(json_field "$3" "$line")"; errors="$(json_field errors "$line")"
    echo "#   $1: ${rate:-?} $2, errors ${errors:-?}"
    rates_ref+=("$rate")
    [ "${errors:-1}" = 0 ] || warnings+=("round $round: $1 had ${errors:-?} errors (see $4)")
}

# The fixed request wrk and the floor replay: one payment of one 1,000,000.0 TRY item, refunded
# 0.01 TRY at a time, signed once. Seeded again after every reset.
rnd="wrkfixedrandomkey123"
fixed_body=""; fixed_auth=""
seed_fixed() {
    reset
    local seeded tx_id
    seeded="$(curl -s -X POST -H 'content-type: application/json' \
        -d '{"currency":"TRY","items":[{"price":"1000000.0"}]}' "$iyzico_url/__sandbox/payments")"
    tx_id="$(printf '%s' "$seeded" | sed -n 's/.*"paymentTransactionId":"\([^"]*\)".*/\1/p')"
    fixed_body="{\"locale\":\"tr\",\"conversationId\":\"wrk-fixed\",\"paymentTransactionId\":\"$tx_id\",\"price\":\"0.01\",\"currency\":\"TRY\",\"ip\":\"85.34.78.112\"}"
    fixed_auth="$("$bin" iyzico auth-header --random-key "$rnd" --path /payment/refund --body "$fixed_body")"
    [ -n "$tx_id" ] && fixed_accepted
}
fixed_accepted() {
    curl -s -X POST -H 'content-type: application/json' -H "Authorization: $fixed_auth" \
        -H "x-iyzi-rnd: $rnd" --data-binary "$fixed_body" "$iyzico_url/payment/refund" \
        | grep -q '"status":"success"'
}

sdk_dir="$work/iyzipay-node"
sdk_ready=0; sdk_note="skipped: node/npm not installed"
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
    mkdir -p "$sdk_dir"
    cp "$here/iyzipay-driver.js" "$sdk_dir/"
    if [ ! -d "$sdk_dir/node_modules/iyzipay" ]; then
        [ -f "$sdk_dir/package.json" ] || echo '{"name":"iyzipay-peer-bench","private":true}' >"$sdk_dir/package.json"
        (cd "$sdk_dir" && npm install --no-audit --no-fund --silent "iyzipay@${IYZIPAY_VERSION:-latest}") \
            || sdk_note="skipped: npm install iyzipay failed"
    fi
    if [ -d "$sdk_dir/node_modules/iyzipay" ]; then
        sdk_ready=1
        sdk_note="iyzipay $(node -p "require('$sdk_dir/node_modules/iyzipay/package.json').version") on node $(node --version), N=$sdk_requests"
    fi
fi
wrk_note="wrk -t$wrk_threads -c$concurrency -d$duration"
command -v wrk >/dev/null 2>&1 || wrk_note="skipped: wrk not installed (apt-get install -y wrk)"
[ "$have_curl" = 1 ] || wrk_note="skipped: curl not installed (needed to seed the fixed request)"

wrk_rates=(); floor_rates=(); ours_rates=(); sdk_rates=(); warnings=()
for round in $(seq 1 "$rounds"); do
    echo "# round $round of $rounds"
    # (a) wrk
    if [ "$have_curl" = 1 ] && command -v wrk >/dev/null 2>&1; then
        if seed_fixed; then
            lua="$work/refund.lua"
            cat >"$lua" <<EOF
wrk.method = "POST"
wrk.path = "/payment/refund"
wrk.body = [[$fixed_body]]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "$fixed_auth"
wrk.headers["x-iyzi-rnd"] = "$rnd"
EOF
            "${client_cpu[@]}" wrk -t"$wrk_threads" -c"$concurrency" -d"$duration" -s "$lua" "$iyzico_url" >"$work/wrk.out"
            rate="$(sed -n 's/^Requests\/sec:[[:space:]]*\([0-9.]*\).*/\1/p' "$work/wrk.out")"
            echo "#   wrk: ${rate:-?} req/s"
            wrk_rates+=("$rate")
            grep -q 'Non-2xx\|Socket errors' "$work/wrk.out" && warnings+=("round $round: wrk reported errors: $(grep 'Non-2xx\|Socket errors' "$work/wrk.out")")
            fixed_accepted || warnings+=("round $round: the fixed request was no longer accepted after wrk")
        else
            warnings+=("round $round: the fixed request was not accepted; wrk skipped")
        fi
    fi
    # (b) the reqwest floor
    if [ "$have_curl" = 1 ] && seed_fixed; then
        "${client_cpu[@]}" "$floor" "$iyzico_url/payment/refund" "$fixed_body" "$requests" "$concurrency" \
            "Authorization: $fixed_auth" "x-iyzi-rnd: $rnd" "Content-Type: application/json" \
            >"$work/floor.out" 2>/dev/null
        record "reqwest floor" req/s requests_per_sec "$work/floor.out" floor_rates
    fi
    # (c) ours
    [ "$have_curl" = 1 ] && reset
    "${client_cpu[@]}" "$bin" bench --provider iyzico --base-url "$iyzico_url" \
        --requests "$requests" --concurrency "$concurrency" >"$work/ours.out" 2>"$work/ours.err"
    record ours refunds/s refunds_per_sec "$work/ours.out" ours_rates
    # (d) the official SDK
    if [ "$sdk_ready" = 1 ]; then
        [ "$have_curl" = 1 ] && reset
        (cd "$sdk_dir" && "${client_cpu[@]}" node iyzipay-driver.js "$iyzico_url" "$sdk_requests" "$concurrency") \
            >"$work/sdk.out" 2>/dev/null
        record SDK refunds/s refunds_per_sec "$work/sdk.out" sdk_rates
    fi
done

median() { printf '%s\n' "$@" | grep -E '^[0-9.]+$' | sort -g | awk '{v[NR]=$1} END { if (NR == 0) print ""; else if (NR % 2) print v[(NR+1)/2]; else print (v[NR/2] + v[NR/2+1]) / 2 }'; }
ratio() { # ratio A B FORMAT(pct|x)
    if [ -n "$1" ] && [ -n "$2" ]; then
        awk -v a="$1" -v b="$2" -v f="$3" 'BEGIN { if (b > 0) { if (f == "pct") printf "%.0f %%", 100 * a / b; else printf "%.1f ×", a / b } else print "n/a" }'
    else
        echo "n/a"
    fi
}
fmt() { if [ -n "${1:-}" ]; then awk -v v="$1" 'BEGIN { printf "%.0f", v }'; else echo "—"; fi; }

echo
echo "# iyzico POST /payment/refund, one sandbox, C=$concurrency, $placement; $(uptime)"
echo "| round | wrk req/s | reqwest floor req/s | ours refunds/s | SDK refunds/s | ours/wrk | ours/floor | floor/wrk | ours/SDK |"
echo "|------:|----------:|--------------------:|---------------:|--------------:|---------:|-----------:|----------:|---------:|"
for i in $(seq 0 $((rounds - 1))); do
    w="${wrk_rates[$i]:-}"; f="${floor_rates[$i]:-}"; o="${ours_rates[$i]:-}"; s="${sdk_rates[$i]:-}"
    echo "| $((i + 1)) | $(fmt "$w") | $(fmt "$f") | $(fmt "$o") | $(fmt "$s") | $(ratio "$o" "$w" pct) | $(ratio "$o" "$f" pct) | $(ratio "$f" "$w" pct) | $(ratio "$o" "$s" x) |"
done
w="$(median "${wrk_rates[@]}")"; f="$(median "${floor_rates[@]}")"; o="$(median "${ours_rates[@]}")"; s="$(median "${sdk_rates[@]}")"
echo "| median (ratios of the medians) | $(fmt "$w") | $(fmt "$f") | $(fmt "$o") | $(fmt "$s") | $(ratio "$o" "$w" pct) | $(ratio "$o" "$f" pct) | $(ratio "$f" "$w" pct) | $(ratio "$o" "$s" x) |"
echo
echo "# wrk: $wrk_note"
echo "# reqwest floor: N=$requests; ours: N=$requests"
echo "# SDK: $sdk_note"
for w in "${warnings[@]}"; do echo "# WARNING: $w"; done
echo "# targets: ours/wrk >= 80 %, ours/SDK >= 3.0 ×"
exit 0
