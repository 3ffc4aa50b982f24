#!/usr/bin/env node
// A tiny app to put behind steemgate, node's http module only (no npm packages).
//
// It greets the account steemgate proved, read from the X-Steem-Account request
// header. Run it with
//
//     node examples/node/app.js --listen 127.0.0.1:3000
//
// and route to it, e.g. {path: /, upstream: "http://127.0.0.1:3000", auth: required}.
//
// The header is only true when the request came through the gateway, which
// removes every client-sent spelling and sets exactly one value: keep the app on
// loopback (or firewall its port) so nothing else reaches it. A request with
// more than one value is refused; no header is an anonymous visitor (a public or
// optional route). tests/examples.rs runs this behind the real gateway.
'use strict';

const http = require('node:http');

const ACCOUNT_NAME = /^[a-z0-9.-]{3,16}$/;

// req.headers joins repeated headers with ", ", so count the raw lines: the
// name matches in any case; other spellings (X_Steem_Account) are ignored.
function identityValues(req) {
  const values = [];
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    if (req.rawHeaders[i].toLowerCase() === 'x-steem-account') {
      values.push(req.rawHeaders[i + 1]);
    }
  }
  return values;
}

function answer(res, status, text) {
  res.writeHead(status, {
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
  });
  res.end(text);
}

const server = http.createServer((req, res) => {
  const values = identityValues(req);
  if (values.length === 0) {
    answer(res, 200, 'Hello, anonymous visitor\n');
  } else if (values.length > 1) {
    answer(res, 400, 'refused: more than one X-Steem-Account value\n');
  } else if (!ACCOUNT_NAME.test(values[0])) {
    answer(res, 400, 'refused: X-Steem-Account is not one account name\n');
  } else {
    answer(res, 200, `Hello @${values[0]}\n`);
  }
});

const flag = process.argv.indexOf('--listen');
const listen = flag >= 0 ? process.argv[flag + 1] : '127.0.0.1:3000';
const split = listen.lastIndexOf(':');
server.listen(Number(listen.slice(split + 1)), listen.slice(0, split), () => {
  const { address, port } = server.address();
  console.log(`upstream listening on http://${address}:${port}`);
});
