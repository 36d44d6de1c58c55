// Load driver for the official, unmodified `iyzipay` npm SDK against a running `refund sandbox`.
//
//   node iyzipay-driver.js <iyzico-base-url> <requests> <concurrency>
//
// Credentials come from IYZICO_API_KEY and IYZICO_SECRET_KEY. Seeds one payment of 200.0 TRY
// (one item) per 100 refunds through the sandbox admin API, then issues <requests> item refunds
// of 1.0 TRY through `iyzipay.refund.create` with <concurrency> promises in flight, exactly as
// `refund bench --provider iyzico` does. The seeding is not timed. Human lines go to stderr; the
// last stdout line is JSON: {"refunds_per_sec", "requests", "concurrency", "errors", "seconds"}.
'use strict';

const Iyzipay = require('iyzipay');

const [base, requestsArg, concurrencyArg] = process.argv.slice(2);
const requests = Number.parseInt(requestsArg || '10000', 10);
const concurrency = Number.parseInt(concurrencyArg || '64', 10);
const apiKey = process.env.IYZICO_API_KEY;
const secretKey = process.env.IYZICO_SECRET_KEY;
const REFUNDS_PER_PAYMENT = 100;

if (!base || !apiKey || !secretKey || !(requests > 0) || !(concurrency > 0)) {
    console.error('usage: IYZICO_API_KEY=… IYZICO_SECRET_KEY=… node iyzipay-driver.js <base-url> <requests> <concurrency>');
    process.exit(2);
}

async function seed() {
    const reply = await fetch(`${base.replace(/\/$/, '')}/__sandbox/payments`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ currency: 'TRY', items: [{ price: '200.0' }] }),
    });
    const json = await reply.json();
    if (!reply.ok || !json.items || !json.items[0] || !json.items[0].paymentTransactionId) {
        throw new Error(`seeding: HTTP ${reply.status}: ${JSON.stringify(json)}`);
    }
    return json.items[0].paymentTransactionId;
}

function refund(iyzipay, txId, i) {
    return new Promise((resolve) => {
        iyzipay.refund.create(
            {
                locale: Iyzipay.LOCALE.TR,
                conversationId: `sdk-bench-${i}`,
                paymentTransactionId: txId,
                price: '1.0',
                currency: Iyzipay.CURRENCY.TRY,
                ip: '85.34.78.112',
            },
            (err, result) => resolve(!err && result && result.status === 'success' ? null : err || result),
        );
    });
}

async function main() {
    const iyzipay = new Iyzipay({ apiKey, secretKey, uri: base });
    const payments = Math.ceil(requests / REFUNDS_PER_PAYMENT);
    const txIds = [];
    for (let p = 0; p < payments; p += 1) {
        txIds.push(await seed());
    }
    console.error(`# seeded ${payments} payments; ${requests} refunds, ${concurrency} in flight`);

    let next = 0;
    let errors = 0;
    let firstError = null;
    async function worker() {
        for (;;) {
            const i = next;
            next += 1;
            if (i >= requests) return;
            const failed = await refund(iyzipay, txIds[Math.floor(i / REFUNDS_PER_PAYMENT)], i);
            if (failed !== null) {
                errors += 1;
                if (firstError === null) firstError = failed;
            }
        }
    }

    const start = process.hrtime.bigint();
    await Promise.all(Array.from({ length: concurrency }, worker));
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    const rate = requests / seconds;
    console.error(`# iyzipay SDK: ${requests} refunds in ${seconds.toFixed(3)} s = ${rate.toFixed(1)} refunds/s, ${errors} errors`);
    if (firstError !== null) {
        console.error(`# first error: ${firstError && firstError.stack ? firstError.stack : JSON.stringify(firstError)}`);
    }
    console.log(JSON.stringify({ refunds_per_sec: Number(rate.toFixed(3)), requests, concurrency, errors, seconds: Number(seconds.toFixed(3)) }));
    process.exit(errors === 0 ? 0 : 5);
}

main().catch((err) => {
    console.error(`driver failed: ${err && err.stack ? err.stack : err}`);
    process.exit(1);
});
