#!/usr/bin/env bash
# Seeds fuzz/corpus/<target>/ (gitignored) from the recorded provider answers in
# crates/refund-testkit/fixtures and fuzz/regressions, so libFuzzer starts from real shapes.
# Idempotent; run from anywhere: `bash fuzz/seed.sh`.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
fixtures="$here/../crates/refund-testkit/fixtures"
corpus="$here/corpus"

# A response seed is two status bytes (big-endian, status = 100 + n % 500) then the body.
seed_answer() { # target status file
  local target=$1 status=$2 file=$3 n
  n=$((status - 100))
  mkdir -p "$corpus/$target"
  { printf "\\x$(printf %02x $((n >> 8)))\\x$(printf %02x $((n & 255)))"; cat "$file"; } \
    > "$corpus/$target/$(basename "$file" .json)-$status"
}

for f in "$fixtures"/sipay/*.json; do
  case "$(basename "$f")" in
    unauthenticated.json) seed_answer sipay_refund_answer 401 "$f" ;;
    *) seed_answer sipay_refund_answer 200 "$f" ;;
  esac
done
for f in "$fixtures"/iyzico/*.json; do
  seed_answer iyzico_refund_answer 200 "$f"
done
seed_answer sipay_refund_answer 500 "$fixtures/sipay/refund_success_en.json"
seed_answer iyzico_refund_answer 400 "$fixtures/iyzico/failure_invalid_request.json"

# lookup_answer: one provider byte (0 SiPay, 1 iyzico) before the status bytes.
seed_lookup() { # provider-byte status file
  local n=$(($2 - 100))
  mkdir -p "$corpus/lookup_answer"
  { printf "\\x$(printf %02x "$1")\\x$(printf %02x $((n >> 8)))\\x$(printf %02x $((n & 255)))"; cat "$3"; } \
    > "$corpus/lookup_answer/$1-$(basename "$3" .json)-$2"
}
for f in "$fixtures"/sipay/check_status_*.json; do seed_lookup 0 200 "$f"; done
for f in "$fixtures"/iyzico/payment_details_*.json; do seed_lookup 1 200 "$f"; done
seed_lookup 1 200 "$fixtures/iyzico/failure_invalid_request.json"

mkdir -p "$corpus/money_parse" "$corpus/json_decimal" "$corpus/sipay_validate_hash_key"
i=0
for s in "10.50" "0" "0.01" "10" "10.5" "1.005" "10,50" "-1" "10.50 TRY" "100 JPY" "0.00 EUR" \
         "79228162514264337593543950335" "1e3" " 1" "1." ".5"; do
  printf '%s' "$s" > "$corpus/money_parse/seed-$i"; i=$((i + 1))
done
i=0
for s in '{"price":10.5}' '{"price":"10.50"}' '{"price":1e2}' '{"price":null}' \
         '{"price":0.1,"paid_price":""}' '{"price":-0.0}' '{"price":79228162514264337593543950336}' \
         '{"price":"  1 "}' '10.5' '"0.30"' '1E-30'; do
  printf '%s' "$s" > "$corpus/json_decimal/seed-$i"; i=$((i + 1))
done
# iv:salt:base64 (with '/' written as '__'): the reference vector from hash_key.rs (made with
# another secret, so it reaches the decryption step and fails there) and malformed shapes.
i=0
for s in "0123456789abcdef:a1b2:VPLV8wrIgS7RAUu+yG788gAk4Sq07__9v__D5O+GdTByrpQVyIkx48ayfqq9jeWdSk" \
         "0123456789abcdef:a1b2:AAAAAAAAAAAAAAAAAAAAAA==" "abc" "a:b:c" "::" ""; do
  printf '%s' "$s" > "$corpus/sipay_validate_hash_key/seed-$i"; i=$((i + 1))
done

# Refund notification form bodies. The first is signed with "secret" (openssl command line,
# iv 0123456789abcdef, salt a1b2, over "Completed|10.50|INV-1|VP1"), so it verifies; the others
# are near misses: a changed amount, a missing field, a repeated field, a bad escape.
mkdir -p "$corpus/sipay_refund_notification"
signed='invoice_id=INV-1&order_id=VP1&amount=10.50&status=Completed&hash_key=0123456789abcdef%3Aa1b2%3AtR3%2Bu9%2BuNYWyFF01v0__gP__CCvUE8EdSMIVTPWJ__gM6U%3D'
i=0
for s in "$signed" "${signed/amount=10.50/amount=10.5}" "${signed/amount=10.50/amount=90.50}" \
         "${signed/&order_id=VP1/}" "$signed&status=Completed" "$signed&x=%zz" \
         "invoice_id=I&order_id=O&amount=1&status=Completed&hash_key=a:b:c" ""; do
  printf '%s' "$s" > "$corpus/sipay_refund_notification/seed-$i"; i=$((i + 1))
done

# IYZWSv2 headers: base64 of "apiKey:k&randomKey:r&signature:s", and near misses.
mkdir -p "$corpus/iyzico_parse_authorization"
i=0
for s in "IYZWSv2 $(printf 'apiKey:api-key&randomKey:123456789&signature:abcdef' | base64 -w0)" \
         "IYZWSv2 $(printf 'apiKey:&randomKey:1&signature:' | base64 -w0)" \
         "IYZWS api-key:abc" "IYZWSv2 !!!" "IYZWSv2"; do
  printf '%s' "$s" > "$corpus/iyzico_parse_authorization/seed-$i"; i=$((i + 1))
done

# Earlier crashes (if any) stay in the corpus so they are re-checked on every run.
if [ -d "$here/regressions" ]; then
  for d in "$here"/regressions/*/; do  # (README.md is skipped: only directories)
    [ -d "$d" ] || continue
    t=$(basename "$d"); mkdir -p "$corpus/$t"; cp "$d"* "$corpus/$t/" 2>/dev/null || true
  done
fi
echo "seeded: $(find "$corpus" -type f | wc -l) files under $corpus"
