// A JsSIP user agent in Node, as a WebRTC agent phone without media: registers over ws or wss,
// reports what happens as one JSON object per line on stdout, and declines every incoming call
// with 486 (answering needs RTCPeerConnection, which Node lacks), or with ON_INVITE=ring leaves
// it ringing.
//
//   WS_URL=ws://127.0.0.1:5066 SIP_USER=1001 SIP_PASSWORD=secret SIP_DOMAIN=127.0.0.1 \
//   [CA_FILE=cert.pem] [ON_INVITE=decline|ring] node jssip_agent.js
//
// CA_FILE makes the wss connection trust that certificate (a test's self-signed one), and only
// for this process's connection: verification stays on.
'use strict';

const fs = require('fs');
const WS = require('ws');
const JsSIP = require('jssip');

function report(event, fields) {
  process.stdout.write(JSON.stringify(Object.assign({ event }, fields || {})) + '\n');
}

function need(name) {
  const value = process.env[name];
  if (!value) {
    report('error', { reason: `${name} is not set` });
    process.exit(2);
  }
  return value;
}

const url = need('WS_URL');
const user = need('SIP_USER');
const password = need('SIP_PASSWORD');
const domain = need('SIP_DOMAIN');
const ca = process.env.CA_FILE ? fs.readFileSync(process.env.CA_FILE) : undefined;

// JsSIP opens `new WebSocket(url, 'sip')` as in a browser; Node 20 has no global WebSocket,
// so the ws package stands in, with the test's CA when one is given.
global.WebSocket = class extends WS {
  constructor(address, protocols) {
    super(address, protocols, ca ? { ca } : {});
  }
};

// JsSIP checks that the "browser" has WebRTC before it hands an incoming INVITE over (488
// otherwise). Every call here is declined before any peer connection would be made, so a
// constructor that is never called is enough; one that is called fails loudly.
global.window = {
  RTCPeerConnection: function RTCPeerConnection() {
    throw new Error('no WebRTC media in Node: this test agent only declines calls');
  },
};

const socket = new JsSIP.WebSocketInterface(url);
const ua = new JsSIP.UA({
  sockets: [socket],
  uri: `sip:${user}@${domain}`,
  password,
  register: true,
  register_expires: 300,
  session_timers: false,
  connection_recovery_min_interval: 600,
  connection_recovery_max_interval: 600,
});

ua.on('connected', () => report('connected'));
ua.on('disconnected', (e) => report('disconnected', { error: Boolean(e && e.error) }));
ua.on('registered', (e) => report('registered', { contact: ua.contact.toString(), status: e.response.status_code }));
ua.on('registrationFailed', (e) => report('registration_failed', { cause: e.cause, status: e.response ? e.response.status_code : null }));
ua.on('newRTCSession', (e) => {
  if (e.originator !== 'remote') {
    return;
  }
  const request = e.request;
  report('invite', {
    call_id: request.call_id,
    via: request.getHeader('Via'),
    contact: request.getHeader('Contact'),
    ruri: request.ruri.toString(),
    queue: request.getHeader('X-Switchboard-Queue') || null,
    did: request.getHeader('X-Switchboard-DID') || null,
  });
  e.session.on('failed', (f) => report('call_failed', { cause: f.cause, originator: f.originator }));
  if (process.env.ON_INVITE !== 'ring') {
    e.session.terminate({ status_code: 486, reason_phrase: 'Busy Here' });
  }
});

process.stdin.on('data', (chunk) => {
  if (chunk.toString().includes('stop')) {
    ua.stop();
  }
});

ua.start();
