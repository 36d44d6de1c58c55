// Drives the official, unmodified `iyzipay` npm package against IyzicoSim.
// Usage: node iyzipay-node.js <sandbox-json-line>   (see iyzipay-node.sh)
'use strict';

const assert = require('assert');
const crypto = require('crypto');
const Iyzipay = require('iyzipay');

const sandbox = JSON.parse(process.argv[2]).iyzico;
const base = sandbox.base_url;

function sdk(secretKey) {
    return new Iyzipay({ apiKey: sandbox.api_key, secretKey, uri: base });
}

function call(resource, method, request) {
    return new Promise((resolve, reject) => {
        resource[method](request, (err, result) => (err ? reject(err) : resolve(result)));
    });
}

async function admin(method, path, body) {
    const reply = await fetch(base + path, {
        method,
        headers: { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = await reply.json();
    assert.ok(reply.ok, `${method} ${path}: ${JSON.stringify(json)}`);
    return json;
}

// What a careful client checks: HMAC-SHA256(secret, paymentId:price:currency:conversationId),
// price as the JSON number prints in JS (no trailing zeros).
function responseSignature(secret, r) {
    const data = [r.paymentId, String(r.price), r.currency, r.conversationId || ''].join(':');
    return crypto.createHmac('sha256', secret).update(data).digest('hex');
}

let checks = 0;
function ok(what) {
    checks += 1;
    console.log(`ok ${checks} - ${what}`);
}

async function main() {
    const iyzipay = sdk(sandbox.secret_key);
    await admin('POST', '/__sandbox/reset', {});

    const seeded = await admin('POST', '/__sandbox/payments', {
        currency: 'TRY',
        conversationId: 'sdk-check-order-1',
        items: [{ price: '60.0' }, { price: '40.0' }],
    });
    const [line1, line2] = seeded.items;

    // 1. Partial item refund, price given as the SDK's users do (a string it reformats).
    const partial = await call(iyzipay.refund, 'create', {
        locale: Iyzipay.LOCALE.TR,
        conversationId: 'sdk-partial-1',
        paymentTransactionId: line1.paymentTransactionId,
        price: '10.50',
        currency: Iyzipay.CURRENCY.TRY,
        ip: '85.34.78.112',
    });
    assert.strictEqual(partial.status, 'success', JSON.stringify(partial));
    assert.strictEqual(partial.conversationId, 'sdk-partial-1');
    assert.strictEqual(partial.paymentId, seeded.paymentId);
    assert.strictEqual(partial.paymentTransactionId, line1.paymentTransactionId);
    assert.strictEqual(partial.price, 10.5);
    assert.strictEqual(partial.signature, responseSignature(sandbox.secret_key, partial));
    ok('partial item refund (10.50 of 60.0) accepted, response signature verifies');

    // 2. A second partial refund on the same line, then the full remainder of line 2.
    const second = await call(iyzipay.refund, 'create', {
        locale: Iyzipay.LOCALE.TR, conversationId: 'sdk-partial-2',
        paymentTransactionId: line1.paymentTransactionId, price: 9.5,
        currency: Iyzipay.CURRENCY.TRY, ip: '85.34.78.112',
    });
    assert.strictEqual(second.status, 'success', JSON.stringify(second));
    const full = await call(iyzipay.refund, 'create', {
        locale: Iyzipay.LOCALE.TR, conversationId: 'sdk-full-line-2',
        paymentTransactionId: line2.paymentTransactionId, price: '40',
        currency: Iyzipay.CURRENCY.TRY, ip: '85.34.78.112',
        reason: Iyzipay.REFUND_REASON.OTHER, description: 'customer requested',
    });
    assert.strictEqual(full.status, 'success', JSON.stringify(full));
    assert.strictEqual(full.price, 40);
    assert.strictEqual(full.signature, responseSignature(sandbox.secret_key, full));
    ok('repeated partial refund and a full line refund (price "40" sent as "40.0") accepted');

    // 3. Over-refund of line 2 is refused.
    const over = await call(iyzipay.refund, 'create', {
        locale: Iyzipay.LOCALE.TR, conversationId: 'sdk-over', paymentTransactionId: line2.paymentTransactionId,
        price: '0.01', currency: Iyzipay.CURRENCY.TRY, ip: '85.34.78.112',
    });
    assert.strictEqual(over.status, 'failure', JSON.stringify(over));
    ok(`over-refund refused (errorCode ${over.errorCode})`);

    // 4. Payment-level refund (v2).
    const v2 = await call(iyzipay.refundV2, 'create', {
        locale: Iyzipay.LOCALE.TR, conversationId: 'sdk-v2', paymentId: seeded.paymentId,
        price: '15', currency: Iyzipay.CURRENCY.TRY, ip: '85.34.78.112',
    });
    assert.strictEqual(v2.status, 'success', JSON.stringify(v2));
    assert.strictEqual(v2.price, 15);
    assert.strictEqual(v2.signature, responseSignature(sandbox.secret_key, v2));
    ok('payment-level refund (v2) accepted, response signature verifies');

    // 5. Reporting lookup (GET with query string) shows the refunds with their conversationIds.
    const details = await call(iyzipay.reportingTransactionDetails, 'retrieve', {
        paymentConversationId: 'sdk-check-order-1',
    });
    assert.strictEqual(details.status, 'success', JSON.stringify(details));
    const refunds = details.payments[0].itemTransactions.flatMap((i) => i.refunds);
    const ids = refunds.map((r) => r.refundConversationId);
    for (const id of ['sdk-partial-1', 'sdk-partial-2', 'sdk-full-line-2', 'sdk-v2']) {
        assert.ok(ids.includes(id), `${id} missing from ${JSON.stringify(ids)}`);
    }
    ok('reporting lookup lists every refund by conversationId');

    // 6. Cancel (void) of a fresh payment.
    const toCancel = await admin('POST', '/__sandbox/payments', { currency: 'TRY', items: [{ price: '1.1' }] });
    const cancel = await call(iyzipay.cancel, 'create', {
        locale: Iyzipay.LOCALE.TR, conversationId: 'sdk-cancel', paymentId: toCancel.paymentId,
        ip: '85.34.78.112', reason: Iyzipay.REFUND_REASON.OTHER, description: 'customer requested',
    });
    assert.strictEqual(cancel.status, 'success', JSON.stringify(cancel));
    assert.strictEqual(cancel.price, 1.1);
    ok('cancel of an unrefunded payment accepted');

    // 7. A wrong secret key is refused like iyzico does: HTTP 200, status failure, 1000.
    const wrong = await call(sdk('not-the-secret').refund, 'create', {
        locale: Iyzipay.LOCALE.TR, conversationId: 'sdk-wrong-secret',
        paymentTransactionId: line1.paymentTransactionId, price: '1', currency: Iyzipay.CURRENCY.TRY, ip: '85.34.78.112',
    });
    assert.strictEqual(wrong.status, 'failure', JSON.stringify(wrong));
    assert.strictEqual(wrong.errorCode, '1000');
    ok('wrong secret key refused with errorCode 1000');

    // 8. The ledger agrees.
    const ledger = await admin('GET', '/__sandbox/ledger');
    const payment = ledger.payments.find((p) => p.id === seeded.paymentId);
    assert.strictEqual(payment.amount, '100.00');
    assert.strictEqual(payment.refunded, '75.00');
    assert.strictEqual(payment.refunds.length, 4); // line 1 had 40.0 left: the v2 refund took it all there
    const cancelled = ledger.payments.find((p) => p.id === toCancel.paymentId);
    assert.strictEqual(cancelled.cancelled, true);
    ok('ledger: 75.00 of 100.00 refunded, second payment cancelled, nothing from refused calls');

    console.log(`# iyzipay-node SDK check passed: ${checks} checks`);
}

main().catch((err) => {
    console.error(`not ok - ${err && err.stack ? err.stack : err}`);
    process.exit(1);
});
