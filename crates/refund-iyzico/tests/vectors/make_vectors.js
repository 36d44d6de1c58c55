// Generates crates/refund-iyzico/tests/vectors/node_sdk_vectors.json with the OFFICIAL iyzico
// node SDK (npm package `iyzipay`): its own request models, its own signing and its own HTTP
// call. Nothing here re-implements iyzico's scheme; the script only pins the random key and
// records what the SDK puts on the wire, through a loopback HTTP server.
//
// Run it outside the repository (the SDK's code is not ours to commit):
//   mkdir -p /tmp/iyzipay-vectors && cd /tmp/iyzipay-vectors && npm init -y && npm install iyzipay
//   node /path/to/crates/refund-iyzico/tests/vectors/make_vectors.js > /path/to/crates/refund-iyzico/tests/vectors/node_sdk_vectors.json
// with NODE_PATH=/tmp/iyzipay-vectors/node_modules (node resolves modules from the script, not the cwd).
'use strict';

const http = require('http');
const Iyzipay = require('iyzipay');
const utils = require('iyzipay/lib/utils');
const sdkVersion = require('iyzipay/package.json').version;

// The SDK calls utils.generateRandomString for every request; pin it per case.
let randomKey = '123456789';
utils.generateRandomString = function () {
    return randomKey;
};

const cases = [
    {
        name: 'refund_v1_doc_sample',
        resource: 'refund', method: 'create',
        apiKey: 'apiKey', secretKey: 'secretKey', random: '123456789',
        request: { locale: 'tr', conversationId: '123456789', paymentTransactionId: '1', price: '0.5', ip: '85.34.78.112', currency: 'TRY' },
    },
    {
        name: 'refund_v1_with_reason_and_description',
        resource: 'refund', method: 'create',
        apiKey: 'sandbox-afXhZPW0MQlE4dCUUlHcEopnMBgXnAZI', secretKey: 'sandbox-wbwpzKIiplZxI3hh5ALI4FJyAcZKL6kq', random: '17270345678901234',
        request: { locale: 'en', conversationId: 'rf-0123456789abcdef01234567', paymentTransactionId: '11433038', price: '100.10', ip: '10.0.0.1', currency: 'USD', reason: Iyzipay.REFUND_REASON.BUYER_REQUEST, description: 'Müşteri iadesi: "kırık" ürün / İĞÜŞÖÇ' },
    },
    {
        name: 'refund_v1_fraud_whole_lira',
        resource: 'refund', method: 'create',
        apiKey: 'key', secretKey: 'sec', random: '1',
        request: { locale: 'tr', conversationId: 'order-42-refund-1', paymentTransactionId: '99', price: '1234.00', ip: '85.34.78.112', currency: 'EUR', reason: Iyzipay.REFUND_REASON.FRAUD, description: 'chargeback' },
    },
    {
        name: 'refund_v2_doc_sample',
        resource: 'refundV2', method: 'create',
        apiKey: 'apiKey', secretKey: 'secretKey', random: '123456789',
        request: { locale: 'tr', conversationId: '123456789', price: '15', paymentId: '25180208', currency: 'TRY', ip: '85.34.78.112' },
    },
    {
        name: 'refund_v2_one_kurus',
        resource: 'refundV2', method: 'create',
        apiKey: 'sandbox-afXhZPW0MQlE4dCUUlHcEopnMBgXnAZI', secretKey: 'sandbox-wbwpzKIiplZxI3hh5ALI4FJyAcZKL6kq', random: '99887766554433',
        request: { locale: 'en', conversationId: 'rf-ffffffffffffffffffffffff', price: '0.01', paymentId: '10844367', currency: 'GBP', ip: '2001:db8::1' },
    },
    {
        name: 'cancel_doc_sample',
        resource: 'cancel', method: 'create',
        apiKey: 'apiKey', secretKey: 'secretKey', random: '123456789',
        request: { locale: 'tr', conversationId: '123456789', paymentId: '25180158', ip: '85.34.78.112', reason: Iyzipay.REFUND_REASON.OTHER, description: 'customer requested' },
    },
    {
        name: 'cancel_double_payment',
        resource: 'cancel', method: 'create',
        apiKey: 'key', secretKey: 'sec', random: '5',
        request: { locale: 'en', conversationId: 'void-1', paymentId: '7', ip: '127.0.0.1', reason: Iyzipay.REFUND_REASON.DOUBLE_PAYMENT, description: 'charged twice' },
    },
    {
        name: 'cancel_without_reason',
        resource: 'cancel', method: 'create',
        apiKey: 'key', secretKey: 'sec', random: '6',
        request: { locale: 'tr', conversationId: 'void-2', paymentId: '8', ip: '127.0.0.1' },
    },
    {
        name: 'reporting_payment_details',
        resource: 'reportingTransactionDetails', method: 'retrieve',
        apiKey: 'key', secretKey: 'sec', random: '42',
        request: { locale: 'tr', conversationId: '123456789', paymentConversationId: 'pay-conv-1' },
    },
];

const prices = ['10.50', '10', '0.5', '100.10', '1234.00', '0.01', '0.10', '0', '0.00', '15', '1000000.99',
    '999999.90', '007.10', '1.23', '250.05', '19.99', '100000', '0.1', '12.30'];

function capture(server, c) {
    return new Promise(function (resolve, reject) {
        server.once('request', function (req, res) {
            const chunks = [];
            req.on('data', function (d) { chunks.push(d); });
            req.on('end', function () {
                res.setHeader('Content-Type', 'application/json');
                res.end('{"status":"success"}');
                const url = new URL(req.url, 'http://127.0.0.1');
                resolve({
                    name: c.name,
                    api_key: c.apiKey,
                    secret_key: c.secretKey,
                    random_key: c.random,
                    method: req.method,
                    path: url.pathname,
                    query: url.search,
                    body: Buffer.concat(chunks).toString('utf8'),
                    authorization: req.headers['authorization'],
                    x_iyzi_rnd: req.headers['x-iyzi-rnd'],
                    content_type: req.headers['content-type'],
                });
            });
        });
        const iyzipay = new Iyzipay({ apiKey: c.apiKey, secretKey: c.secretKey, uri: 'http://127.0.0.1:' + server.address().port });
        randomKey = c.random;
        iyzipay[c.resource][c.method](c.request, function (err) { if (err) reject(err); });
    });
}

async function main() {
    const server = http.createServer();
    await new Promise(function (r) { server.listen(0, '127.0.0.1', r); });
    const requests = [];
    for (const c of cases) {
        requests.push(await capture(server, c));
    }
    server.close();
    const responseSignatures = [
        { secret_key: 'sandbox-qaIiLIxhjMgx3LSKIVvp6j17NunHOFtD', fields: ['22416032', 'TRY', 'basketId', 'conversationId', '10.5', '10.5'] },
        { secret_key: 'secretKey', fields: ['10844367', '0.5', 'TRY', '123456789'] },
        { secret_key: 'sec', fields: ['25180208', '15', 'TRY', 'rf-0123456789abcdef01234567'] },
        { secret_key: 'sec', fields: ['', '', 'TRY', ''] },
    ].map(function (v) { return Object.assign(v, { signature: utils.calculateHmacSHA256Signature(v.fields, v.secret_key) }); });
    process.stdout.write(JSON.stringify({
        generator: 'crates/refund-iyzico/tests/vectors/make_vectors.js',
        sdk: 'iyzipay (npm) ' + sdkVersion,
        requests: requests,
        prices: prices.map(function (p) { return { input: p, sdk: utils.formatPrice(p) }; }),
        response_signatures: responseSignatures,
    }, null, 2) + '\n');
}

main().catch(function (e) { console.error(e); process.exit(1); });
