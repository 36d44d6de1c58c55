#!/usr/bin/env bash
# Reference vectors for refund_sipay::hash_key, made with the openssl command line, independently
# of the Rust code.
#
# The algorithm is exactly the bash sample in SiPay's "Refund" documentation
# (shared/seeds/sipay-refund-en.md), with two deliberate differences:
#   1. the iv and salt are fixed arguments instead of `openssl rand ... | sha1 | cut`, so the
#      output is deterministic;
#   2. `openssl enc -base64` gets `-A`, so the base64 is one line. The documented sample omits
#      it, and openssl then wraps base64 every 64 characters: with a realistic 60-character
#      merchant key the documented sample prints a hash_key with a line break in it (kept below
#      as `doc_sample_output` to show the defect). SiPay's PHP reference emits no line breaks.
#
# Usage: tests/vectors/make_hash_key_vectors.sh > tests/vectors/hash_key_vectors.json
# Needs: bash, openssl (1.1 or 3.x), xxd, jq.
set -euo pipefail

# generate_hash_key DATA APP_SECRET IV SALT [WRAP]
# DATA is the fields already joined with '|'. WRAP=wrap reproduces the documented sample's
# `-base64` without `-A` (line-wrapped output).
generate_hash_key() {
  local data="$1"
  local app_secret="$2"
  local iv="$3"
  local salt="$4"
  local wrap="${5:-}"

  local password
  password=$(printf "%s" "$app_secret" | openssl sha1 | awk '{print $2}')

  local salt_with_password
  salt_with_password=$(printf "%s" "${password}${salt}" | openssl sha256 | awk '{print $2}' | cut -c1-32)

  local key_hex
  key_hex=$(printf "%s" "$salt_with_password" | xxd -p -c 256)

  local iv_hex
  iv_hex=$(printf "%s" "$iv" | xxd -p -c 256)

  local encrypted_base64
  if [ "$wrap" = "wrap" ]; then
    encrypted_base64=$(printf "%s" "$data" | openssl enc -aes-256-cbc -K "$key_hex" -iv "$iv_hex" -base64)
  else
    encrypted_base64=$(printf "%s" "$data" | openssl enc -aes-256-cbc -K "$key_hex" -iv "$iv_hex" -A -base64)
  fi

  local msg="${iv}:${salt}:${encrypted_base64}"
  msg="${msg//\//__}"

  printf "%s" "$msg"
}

SAMPLE_SECRET="b46a67571aa1e7ef5641dc3fa6f1712a"
SAMPLE_MERCHANT_KEY='$2y$10$HmRgYosneqcwHj.UH7upGuyCZqpQ1ITgSMj9Vvxn.t6f.Vdf2SQFO'

# name | app_secret | fields... | iv | salt | wrap|nowrap (wrap: also record the documented, line-wrapped output)
vectors=(
  "doc_example_refund|my_secret_key_456|100.50|INV-2026-0001|test_merchant_123|0123456789abcdef|a1b2|nowrap"
  "sample_merchant_refund|${SAMPLE_SECRET}|100.50|CPIKQUM29TXMQFF-1769581631|${SAMPLE_MERCHANT_KEY}|5f1e0c9d3b2a4e6f|9c3d|wrap"
  "sample_merchant_partial_refund|${SAMPLE_SECRET}|25.00|INV-2026-0001|${SAMPLE_MERCHANT_KEY}|d3adb33fc0ffee00|0f0f|wrap"
  "sample_merchant_checkstatus|${SAMPLE_SECRET}|193441611827736|${SAMPLE_MERCHANT_KEY}|aaaaaaaaaaaaaaaa|ffff|nowrap"
  "seed_tr_refund_half|bb18138fbd6fe9a2512e8933e6f37a01|0.50|193441611827736|\$2y\$10\$0X.RKmBNjKHg7vfJ8N46j.Zq.AU6vBVASro7AGGkaffB4mrdaV4mO|0000000000000000|0000|nowrap"
  "utf8_invoice_id|${SAMPLE_SECRET}|1999.99|FATURA-ÇĞİÖŞÜ-2026|${SAMPLE_MERCHANT_KEY}|1234567890abcdef|beef|nowrap"
  "exact_block_plaintext|my_secret_key_456|10.00|INV-0001|merchant-key-xx|fedcba9876543210|1a2b|nowrap"
  "large_amount|${SAMPLE_SECRET}|123456789.01|INV-LARGE-AMOUNT-000000000000000001|${SAMPLE_MERCHANT_KEY}|0f1e2d3c4b5a6978|c0de|nowrap"
)

# Plus a sweep of ivs over one plaintext, so some outputs are certain to contain '/' (written
# '__') and '+'.
for i in $(seq 0 11); do
  iv=$(printf "%016x" $((i * 7919 + 1)))
  vectors+=("slash_sweep_${i}|${SAMPLE_SECRET}|7.25|SWEEP-${i}|${SAMPLE_MERCHANT_KEY}|${iv}|$(printf '%04x' $((i * 31)))|nowrap")
done

{
  echo "["
  first=1
  for v in "${vectors[@]}"; do
    IFS='|' read -r -a parts <<<"$v"
    n=${#parts[@]}
    name="${parts[0]}"
    secret="${parts[1]}"
    wrap="${parts[$((n - 1))]}"
    salt="${parts[$((n - 2))]}"
    iv="${parts[$((n - 3))]}"
    fields=("${parts[@]:2:$((n - 5))}")
    data=$(IFS='|'; printf "%s" "${fields[*]}")
    hash=$(generate_hash_key "$data" "$secret" "$iv" "$salt")
    doc=""
    if [ "$wrap" = "wrap" ]; then
      doc=$(generate_hash_key "$data" "$secret" "$iv" "$salt" wrap)
    fi
    [ $first -eq 1 ] || echo ","
    first=0
    jq -n \
      --arg name "$name" --arg secret "$secret" --arg iv "$iv" --arg salt "$salt" \
      --arg hash "$hash" --arg doc "$doc" \
      --argjson fields "$(printf '%s\n' "${fields[@]}" | jq -R . | jq -s .)" \
      '{name: $name, app_secret: $secret, fields: $fields, iv: $iv, salt: $salt, hash_key: $hash}
       + (if $doc == "" then {} else {doc_sample_output: $doc} end)'
  done
  echo "]"
} | jq .
