#!/usr/bin/env node
// SMSC simulator for Veil's end-to-end SMS tests.
//
// It speaks SMPP 3.4 through the npm package "smpp" (an implementation
// independent of gosmpp, which Veil uses) and is driven by an HTTP/JSON
// control API. See README.md for the API.
//
//   node smsc.js --smpp-port 0 --control-port 0 [--host 127.0.0.1]
//                [--tls-cert cert.pem --tls-key key.pem]
//                [--exit-on-stdin-eof] [--verbose]
//
// When both listeners are up it prints one line on stdout:
//   {"smpp":PORT,"control":PORT}
// Everything else (logs) goes to stderr.
'use strict';

const fs = require('fs');
const http = require('http');
const smpp = require('smpp');

// ---------------------------------------------------------------------------
// Raw bytes only. The library's "filters" transcode short_message and
// message_payload according to data_coding (lossy: unknown GSM septets become
// spaces, UDH is split off) and turn time fields into Date objects (a
// malformed relative time even throws inside the parser and wedges the
// session). Removing every filter makes the library read and write Buffers
// and plain strings as they are on the wire.
for (const name of Object.keys(smpp.commands)) {
	const params = smpp.commands[name].params || {};
	for (const key of Object.keys(params)) {
		delete params[key].filter;
	}
}
for (const tag of Object.keys(smpp.tlvs)) {
	delete smpp.tlvs[tag].filter;
}

// ---------------------------------------------------------------------------
// Command line.
const args = {smppPort: 2775, controlPort: 8775, host: '127.0.0.1', stdinEOF: false, verbose: false, tlsCert: '', tlsKey: ''};
for (let i = 2; i < process.argv.length; i++) {
	const a = process.argv[i];
	const next = () => {
		if (i + 1 >= process.argv.length) {
			fatal(`${a} needs a value`);
		}
		return process.argv[++i];
	};
	switch (a) {
	case '--smpp-port': args.smppPort = Number(next()); break;
	case '--control-port': args.controlPort = Number(next()); break;
	case '--host': args.host = next(); break;
	case '--exit-on-stdin-eof': args.stdinEOF = true; break;
	case '--verbose': args.verbose = true; break;
	case '--tls-cert': args.tlsCert = next(); break;
	case '--tls-key': args.tlsKey = next(); break;
	default: fatal(`unknown argument ${a}`);
	}
}
if (!/^(127\.\d+\.\d+\.\d+|::1|localhost)$/.test(args.host)) {
	fatal(`--host ${args.host}: loopback addresses only`);
}
if (!args.tlsCert !== !args.tlsKey) {
	fatal('--tls-cert and --tls-key go together');
}

function fatal(msg) {
	process.stderr.write(`smsc: ${msg}\n`);
	process.exit(2);
}

function log(msg) {
	process.stderr.write(`smsc: ${new Date().toISOString()} ${msg}\n`);
}

// ---------------------------------------------------------------------------
// SMPP constants.
const S = {
	ROK: 0x00, RINVMSGLEN: 0x01, RINVCMDID: 0x03, RINVBNDSTS: 0x04, RALYBND: 0x05,
	RSYSERR: 0x08, RBINDFAIL: 0x0D, RINVPASWD: 0x0E, RINVSYSID: 0x0F, RMSGQFUL: 0x14,
	RTHROTTLED: 0x58,
};
const MESSAGE_STATE = {
	ENROUTE: 1, DELIVRD: 2, EXPIRED: 3, DELETED: 4, UNDELIV: 5, ACCEPTD: 6, UNKNOWN: 7, REJECTD: 8,
};
const BIND_TYPES = {bind_transmitter: 'transmitter', bind_receiver: 'receiver', bind_transceiver: 'transceiver'};

// ---------------------------------------------------------------------------
// Configuration (PUT /config merges into it; null restores a default).
const DEFAULTS = {
	system_id: 'veil',
	password: 'secret',
	bind_fail_status: null, // null: ESME_RINVSYSID for a wrong system_id, ESME_RINVPASWD for a wrong password
	bind_error_body: false, // include system_id in a failed bind_*_resp (the library sends the header only)
	smsc_system_id: 'smsc-sim',
	resp_delay_ms: 0,
	id_format: 'hex', // hex | HEX | decimal
	receipt_id_format: 'same', // same | hex | HEX | decimal
	deliver_timeout_ms: 5000, // how long a deliver_sm waits for its resp
	receipts: {
		enabled: null, // null: as registered_delivery asks; true: always; false: never
		delay_ms: 0,
		mode: 'text', // text | tlv | both
		before_resp: false,
		stat: 'DELIVRD',
		err: null, // null: 000 for DELIVRD, 001 otherwise
		fail_part: 0,
		stat_by_dest: {},
		lowercase: false,
		uppercase_keys: false,
	},
	throttle: {every: 0, first: 0, status: S.RTHROTTLED},
	max_tps: 0,
	window_check: 0,
};
const FREE_FORM = new Set(['stat_by_dest']);

const clone = (v) => JSON.parse(JSON.stringify(v));
let cfg = clone(DEFAULTS);

function mergeConfig(target, src, defaults, path) {
	for (const key of Object.keys(src)) {
		const where = path ? `${path}.${key}` : key;
		if (!(key in defaults)) {
			throw new Error(`unknown config key ${where}`);
		}
		const v = src[key];
		const d = defaults[key];
		if (v === null) {
			target[key] = clone(d);
		} else if (FREE_FORM.has(key)) {
			if (typeof v !== 'object' || Array.isArray(v)) {
				throw new Error(`${where} must be an object`);
			}
			target[key] = Object.assign({}, target[key], v);
		} else if (d !== null && typeof d === 'object') {
			if (typeof v !== 'object' || Array.isArray(v)) {
				throw new Error(`${where} must be an object`);
			}
			mergeConfig(target[key], v, d, where);
		} else if (d !== null && typeof v !== typeof d) {
			throw new Error(`${where} must be a ${typeof d}`);
		} else {
			target[key] = v;
		}
	}
}

function checkConfig(c) {
	const oneOf = (name, v, allowed) => {
		if (!allowed.includes(v)) {
			throw new Error(`${name} must be one of ${allowed.join(', ')}`);
		}
	};
	oneOf('id_format', c.id_format, ['hex', 'HEX', 'decimal']);
	oneOf('receipt_id_format', c.receipt_id_format, ['same', 'hex', 'HEX', 'decimal']);
	oneOf('receipts.mode', c.receipts.mode, ['text', 'tlv', 'both']);
	const stats = [c.receipts.stat, ...Object.values(c.receipts.stat_by_dest)];
	for (const s of stats) {
		if (!(s in MESSAGE_STATE)) {
			throw new Error(`receipt stat ${s} must be one of ${Object.keys(MESSAGE_STATE).join(', ')}`);
		}
	}
	if (c.receipts.enabled !== null && typeof c.receipts.enabled !== 'boolean') {
		throw new Error('receipts.enabled must be a boolean or null');
	}
	if (c.bind_fail_status !== null && typeof c.bind_fail_status !== 'number') {
		throw new Error('bind_fail_status must be a number or null');
	}
	if (c.receipts.err !== null && typeof c.receipts.err !== 'number' && typeof c.receipts.err !== 'string') {
		throw new Error('receipts.err must be a number, a string or null');
	}
}

// ---------------------------------------------------------------------------
// State.
let counters;
let submits; // submits[seq-1]
const pendingReceipts = new Map(); // system_id -> [deliver_sm options] waiting for a receiver
let throttleFirstLeft = 0;
let throttleEveryCount = 0;
let tpsRing = null; // times of the last max_tps accepted submits
let tpsIdx = 0;
let refuseUntil = 0;
let refuseMode = 'close';
let nextConnId = 1;
let nextMessageId = 0xA0000000; // hex ids contain letters, decimal ids have 10 digits
let nextMORef = 1;
const conns = new Set();

function resetState() {
	counters = {
		connections_total: 0, connections_refused: 0,
		binds_total: 0, bind_failures: 0, unbinds: 0, enquire_links: 0, generic_nacks: 0,
		submits: 0, submits_ok: 0, throttled: 0, window_violations: 0, max_inflight: 0,
		receipts_sent: 0, receipts_acked: 0, receipts_nacked: 0, receipts_timeouts: 0, receipts_requeued: 0,
		mo_sent: 0, mo_acked: 0, mo_nacked: 0, mo_timeouts: 0,
		drops: 0, tls_client_errors: 0,
	};
	submits = [];
	throttleEveryCount = 0;
	tpsRing = null;
}
resetState();

function later(ms, fn) {
	setTimeout(fn, ms);
}

// ---------------------------------------------------------------------------
// GSM 03.38 (default alphabet + extension table) and UCS-2, written here
// rather than taken from the library.
const GSM_BASIC =
	'@£$¥èéùìòÇ\nØø\rÅå' +
	'Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ' +
	' !"#¤%&\'()*+,-./' +
	'0123456789:;<=>?' +
	'¡ABCDEFGHIJKLMNO' +
	'PQRSTUVWXYZÄÖÑÜ§' +
	'¿abcdefghijklmno' +
	'pqrstuvwxyzäöñüà';
const GSM_EXT = {'\f': 0x0A, '^': 0x14, '{': 0x28, '}': 0x29, '\\': 0x2F, '[': 0x3C, '~': 0x3D, ']': 0x3E, '|': 0x40, '€': 0x65};
const gsmEnc = new Map();
const gsmDec = [];
[...GSM_BASIC].forEach((ch, i) => {
	if (i !== 0x1B) {
		gsmEnc.set(ch, [i]);
	}
	gsmDec[i] = ch;
});
const gsmExtDec = {};
for (const [ch, code] of Object.entries(GSM_EXT)) {
	gsmEnc.set(ch, [0x1B, code]);
	gsmExtDec[code] = ch;
}
if (gsmDec.length !== 128) {
	throw new Error(`GSM table has ${gsmDec.length} entries`);
}

// gsmUnits returns the text as a list of septet groups (1 septet, or 2 for
// an extension character), so that a split never cuts an escape.
function gsmUnits(text) {
	const units = [];
	const bad = [];
	for (const ch of text) {
		const u = gsmEnc.get(ch);
		if (u) {
			units.push(u);
		} else {
			bad.push(ch);
		}
	}
	if (bad.length) {
		throw new HTTPError(400, `not in the GSM 03.38 alphabet: ${JSON.stringify(bad.join(''))}`);
	}
	return units;
}

function gsmDecode(buf) {
	let s = '';
	for (let i = 0; i < buf.length; i++) {
		const b = buf[i] & 0x7F;
		if (b === 0x1B && i + 1 < buf.length && gsmExtDec[buf[i + 1]] !== undefined) {
			s += gsmExtDec[buf[++i]];
		} else {
			s += gsmDec[b];
		}
	}
	return s;
}

// ucs2Units returns the UTF-16 code units of text (JS strings are UTF-16:
// characters outside the BMP already are surrogate pairs).
function ucs2Units(text) {
	const units = [];
	for (let i = 0; i < text.length; i++) {
		units.push(text.charCodeAt(i));
	}
	return units;
}

function ucs2Bytes(units) {
	const b = Buffer.alloc(units.length * 2);
	units.forEach((u, i) => b.writeUInt16BE(u, i * 2));
	return b;
}

function ucs2Decode(buf) {
	let s = '';
	for (let i = 0; i + 1 < buf.length; i += 2) {
		s += String.fromCharCode(buf.readUInt16BE(i));
	}
	return s;
}

// splitGSM cuts septet groups into parts of at most max septets.
function splitGSM(units, max) {
	const parts = [];
	let cur = [];
	let n = 0;
	for (const u of units) {
		if (n + u.length > max) {
			parts.push(cur);
			cur = [];
			n = 0;
		}
		cur.push(...u);
		n += u.length;
	}
	parts.push(cur);
	return parts.map((p) => Buffer.from(p));
}

// splitUCS2 cuts code units into parts of at most max units, never between
// the two halves of a surrogate pair.
function splitUCS2(units, max) {
	const parts = [];
	let i = 0;
	while (i < units.length) {
		let end = Math.min(i + max, units.length);
		if (end < units.length && units[end - 1] >= 0xD800 && units[end - 1] <= 0xDBFF) {
			end--;
		}
		parts.push(ucs2Bytes(units.slice(i, end)));
		i = end;
	}
	if (parts.length === 0) {
		parts.push(Buffer.alloc(0));
	}
	return parts;
}

// ---------------------------------------------------------------------------
// Helpers.
function formatId(n, format) {
	switch (format) {
	case 'hex': return n.toString(16);
	case 'HEX': return n.toString(16).toUpperCase();
	default: return String(n);
	}
}

function smscDate(ms) {
	const d = new Date(ms);
	const p = (v) => String(v).padStart(2, '0');
	return p(d.getUTCFullYear() % 100) + p(d.getUTCMonth() + 1) + p(d.getUTCDate()) + p(d.getUTCHours()) + p(d.getUTCMinutes());
}

function hex(b) {
	return b && b.length !== undefined ? Buffer.from(b).toString('hex') : null;
}

// concatInfo finds the concatenation of a submit: UDH IE 0x00 / 0x08 when
// UDHI is set, else the SAR TLVs.
function concatInfo(esmClass, sm, pdu) {
	if ((esmClass & 0x40) && sm && sm.length > 0) {
		const udhl = sm[0];
		let i = 1;
		while (i + 1 < 1 + udhl && i + 1 < sm.length) {
			const iei = sm[i];
			const len = sm[i + 1];
			const d = sm.subarray(i + 2, i + 2 + len);
			if (iei === 0x00 && len === 3) {
				return {type: 'udh8', ref: d[0], total: d[1], seq: d[2]};
			}
			if (iei === 0x08 && len === 4) {
				return {type: 'udh16', ref: d.readUInt16BE(0), total: d[2], seq: d[3]};
			}
			i += 2 + len;
		}
	}
	if (pdu.sar_msg_ref_num !== undefined && pdu.sar_total_segments !== undefined && pdu.sar_segment_seqnum !== undefined) {
		return {type: 'sar', ref: pdu.sar_msg_ref_num, total: pdu.sar_total_segments, seq: pdu.sar_segment_seqnum};
	}
	return null;
}

// messageText gives up to 20 printable ASCII characters of a message, for
// the text: field of a receipt.
function messageText(rec) {
	let body = rec.payload && rec.payload.length ? rec.payload : rec.sm;
	if (!body) {
		return '';
	}
	if ((rec.esm_class & 0x40) && body.length > 0) {
		body = body.subarray(1 + body[0]);
	}
	let s;
	const dc = rec.data_coding;
	if (dc === 0x08) {
		s = ucs2Decode(body);
	} else if (dc === 0x00 || dc === 0x01) {
		s = gsmDecode(body);
	} else {
		s = body.toString('latin1');
	}
	return [...s].slice(0, 20).map((c) => (c >= ' ' && c <= '~' ? c : '?')).join('');
}

// ---------------------------------------------------------------------------
// Connections.
class Conn {
	constructor(session) {
		this.id = nextConnId++;
		this.session = session;
		this.type = null; // transmitter | receiver | transceiver once bound
		this.systemId = null;
		this.inflight = 0;
		this.outstanding = new Map(); // deliver_sm sequence -> {done, timer}
		this.closed = false;
	}

	canReceive() {
		return !this.closed && (this.type === 'receiver' || this.type === 'transceiver');
	}

	send(pdu) {
		if (this.closed) {
			return false;
		}
		return this.session.send(pdu);
	}

	// deliver sends a deliver_sm and calls done(status) with the status of
	// its resp, null on timeout, undefined when the connection closes first.
	deliver(opts, done) {
		const pdu = new smpp.PDU('deliver_sm', opts);
		if (!this.send(pdu)) {
			done(undefined);
			return;
		}
		const seq = pdu.sequence_number;
		const timer = setTimeout(() => {
			if (this.outstanding.delete(seq)) {
				done(null);
			}
		}, cfg.deliver_timeout_ms);
		this.outstanding.set(seq, {done, timer});
	}

	onDeliverResp(pdu) {
		const o = this.outstanding.get(pdu.sequence_number);
		if (!o) {
			return;
		}
		this.outstanding.delete(pdu.sequence_number);
		clearTimeout(o.timer);
		o.done(pdu.command_status);
	}

	onClose() {
		if (this.closed) {
			return;
		}
		this.closed = true;
		conns.delete(this);
		const pending = [...this.outstanding.values()];
		this.outstanding.clear();
		for (const o of pending) {
			clearTimeout(o.timer);
			o.done(undefined);
		}
		if (this.type) {
			log(`conn ${this.id}: ${this.type} ${this.systemId} closed`);
		}
	}
}

function receiverFor(systemId, prefer) {
	if (prefer && prefer.canReceive() && prefer.systemId === systemId) {
		return prefer;
	}
	for (const c of conns) {
		if (c.canReceive() && (systemId === null || c.systemId === systemId)) {
			return c;
		}
	}
	return null;
}

// ---------------------------------------------------------------------------
// Receipts.
function receiptStat(rec) {
	const r = cfg.receipts;
	let stat = r.stat;
	const dest = rec.destination_addr;
	const alt = dest.startsWith('+') ? dest.slice(1) : '+' + dest;
	if (r.stat_by_dest[dest]) {
		stat = r.stat_by_dest[dest];
	} else if (r.stat_by_dest[alt]) {
		stat = r.stat_by_dest[alt];
	}
	if (r.fail_part > 0 && rec.concat && rec.concat.seq === r.fail_part) {
		stat = 'UNDELIV';
	}
	return stat;
}

function wantsReceipt(rec, stat) {
	const e = cfg.receipts.enabled;
	if (e !== null) {
		return e;
	}
	const rd = rec.registered_delivery & 0x03;
	return rd === 1 || (rd === 2 && stat !== 'DELIVRD');
}

function receiptPDU(rec, stat) {
	const r = cfg.receipts;
	const idFormat = cfg.receipt_id_format === 'same' ? cfg.id_format : cfg.receipt_id_format;
	const id = formatId(rec.id_num, idFormat);
	let err = r.err;
	if (err === null) {
		err = stat === 'DELIVRD' ? 0 : 1;
	}
	err = String(err).padStart(3, '0');
	const delivered = stat === 'DELIVRD' ? '001' : '000';
	let text = '';
	if (r.mode !== 'tlv') {
		const keys = r.uppercase_keys ?
			['ID:', 'SUB:', 'DLVRD:', 'SUBMIT DATE:', 'DONE DATE:', 'STAT:', 'ERR:', 'TEXT:'] :
			['id:', 'sub:', 'dlvrd:', 'submit date:', 'done date:', 'stat:', 'err:', 'text:'];
		let statText = stat;
		let body = messageText(rec);
		if (r.lowercase) {
			statText = stat.toLowerCase();
			body = body.toLowerCase();
		}
		text = `${keys[0]}${id} ${keys[1]}001 ${keys[2]}${delivered} ${keys[3]}${smscDate(rec.at)} ` +
			`${keys[4]}${smscDate(Date.now())} ${keys[5]}${statText} ${keys[6]}${err} ${keys[7]}${body}`;
	}
	const opts = {
		source_addr_ton: rec.dest_addr_ton,
		source_addr_npi: rec.dest_addr_npi,
		source_addr: rec.destination_addr,
		dest_addr_ton: rec.source_addr_ton,
		dest_addr_npi: rec.source_addr_npi,
		destination_addr: rec.source_addr,
		esm_class: 0x04,
		data_coding: 0x00,
		short_message: Buffer.from(text, 'latin1'),
	};
	if (r.mode !== 'text') {
		opts.receipted_message_id = id;
		opts.message_state = MESSAGE_STATE[stat];
	}
	return opts;
}

function sendReceipt(systemId, opts, prefer) {
	const c = receiverFor(systemId, prefer);
	if (!c) {
		queueReceipt(systemId, opts);
		return;
	}
	counters.receipts_sent++;
	c.deliver(opts, (status) => {
		if (status === undefined) {
			counters.receipts_requeued++;
			queueReceipt(systemId, opts);
		} else if (status === null) {
			counters.receipts_timeouts++;
		} else if (status === 0) {
			counters.receipts_acked++;
		} else {
			counters.receipts_nacked++;
		}
	});
}

function queueReceipt(systemId, opts) {
	let q = pendingReceipts.get(systemId);
	if (!q) {
		q = [];
		pendingReceipts.set(systemId, q);
	}
	q.push(opts);
}

function flushReceipts(conn) {
	const q = pendingReceipts.get(conn.systemId);
	if (!q || q.length === 0) {
		return;
	}
	pendingReceipts.delete(conn.systemId);
	for (const opts of q) {
		sendReceipt(conn.systemId, opts, conn);
	}
}

// ---------------------------------------------------------------------------
// submit_sm.
function tpsAllow(now) {
	const max = cfg.max_tps;
	if (!tpsRing || tpsRing.length !== max) {
		tpsRing = new Array(max).fill(-Infinity);
		tpsIdx = 0;
	}
	if (now - tpsRing[tpsIdx] < 1000) {
		return false;
	}
	tpsRing[tpsIdx] = now;
	tpsIdx = (tpsIdx + 1) % max;
	return true;
}

function onSubmit(conn, pdu) {
	const now = Date.now();
	counters.submits++;
	const sm = pdu.short_message;
	const payload = pdu.message_payload;
	const rec = {
		seq: submits.length + 1,
		conn: conn.id,
		bind: conn.systemId,
		service_type: pdu.service_type,
		source_addr: pdu.source_addr,
		source_addr_ton: pdu.source_addr_ton,
		source_addr_npi: pdu.source_addr_npi,
		destination_addr: pdu.destination_addr,
		dest_addr_ton: pdu.dest_addr_ton,
		dest_addr_npi: pdu.dest_addr_npi,
		esm_class: pdu.esm_class,
		protocol_id: pdu.protocol_id,
		priority_flag: pdu.priority_flag,
		schedule_delivery_time: pdu.schedule_delivery_time,
		validity_period: pdu.validity_period,
		registered_delivery: pdu.registered_delivery,
		data_coding: pdu.data_coding,
		sm: Buffer.isBuffer(sm) ? sm : null,
		payload: Buffer.isBuffer(payload) ? payload : null,
		sar_ref: pdu.sar_msg_ref_num,
		sar_total: pdu.sar_total_segments,
		sar_seq: pdu.sar_segment_seqnum,
		concat: null,
		id_num: null,
		message_id: null,
		status: 0,
		at: now,
		json: null,
	};
	rec.concat = concatInfo(rec.esm_class, rec.sm, pdu);
	submits.push(rec);

	let status = S.ROK;
	const windowFull = cfg.window_check > 0 && conn.inflight >= cfg.window_check;
	if (windowFull) {
		status = S.RMSGQFUL;
		counters.window_violations++;
	} else if (throttleFirstLeft > 0) {
		throttleFirstLeft--;
		status = cfg.throttle.status;
	} else if (cfg.throttle.every > 0 && ++throttleEveryCount % cfg.throttle.every === 0) {
		status = cfg.throttle.status;
	} else if (cfg.max_tps > 0 && !tpsAllow(now)) {
		status = cfg.throttle.status;
	}
	if (status !== S.ROK && !windowFull) {
		counters.throttled++;
	}
	rec.status = status;

	if (status !== S.ROK) {
		// Refused: answered at once, no id, no receipt.
		conn.send(pdu.response({command_status: status}));
		return;
	}
	counters.submits_ok++;
	rec.id_num = nextMessageId++;
	rec.message_id = formatId(rec.id_num, cfg.id_format);

	const stat = receiptStat(rec);
	const receipt = wantsReceipt(rec, stat);
	const sysId = conn.systemId;
	const r = cfg.receipts;
	const respDelay = cfg.resp_delay_ms;

	const answer = () => {
		conn.inflight--;
		conn.send(pdu.response({message_id: rec.message_id}));
	};
	conn.inflight++;
	if (conn.inflight > counters.max_inflight) {
		counters.max_inflight = conn.inflight;
	}
	if (receipt && r.before_resp) {
		// The carrier race: the receipt goes out first, the resp after it.
		const go = () => {
			sendReceipt(sysId, receiptPDU(rec, stat), conn);
			if (respDelay > 0) {
				later(respDelay, answer);
			} else {
				answer();
			}
		};
		if (r.delay_ms > 0) {
			later(r.delay_ms, go);
		} else {
			go();
		}
		return;
	}
	const afterResp = () => {
		answer();
		if (!receipt) {
			return;
		}
		if (r.delay_ms > 0) {
			later(r.delay_ms, () => sendReceipt(sysId, receiptPDU(rec, stat), conn));
		} else {
			sendReceipt(sysId, receiptPDU(rec, stat), conn);
		}
	};
	if (respDelay > 0) {
		later(respDelay, afterResp);
	} else {
		afterResp();
	}
}

function submitJSON(rec) {
	if (rec.json === null) {
		const o = {
			seq: rec.seq, conn: rec.conn, bind: rec.bind,
			service_type: rec.service_type,
			source_addr: rec.source_addr, source_addr_ton: rec.source_addr_ton, source_addr_npi: rec.source_addr_npi,
			destination_addr: rec.destination_addr, dest_addr_ton: rec.dest_addr_ton, dest_addr_npi: rec.dest_addr_npi,
			esm_class: rec.esm_class, protocol_id: rec.protocol_id, priority_flag: rec.priority_flag,
			schedule_delivery_time: rec.schedule_delivery_time, validity_period: rec.validity_period,
			registered_delivery: rec.registered_delivery, data_coding: rec.data_coding,
			short_message_hex: hex(rec.sm) || '',
			message_payload_hex: hex(rec.payload),
		};
		if (rec.sar_ref !== undefined) {
			o.sar_ref = rec.sar_ref;
		}
		if (rec.sar_total !== undefined) {
			o.sar_total = rec.sar_total;
		}
		if (rec.sar_seq !== undefined) {
			o.sar_seq = rec.sar_seq;
		}
		if (rec.concat) {
			o.concat = rec.concat;
		}
		o.message_id = rec.message_id;
		o.status = rec.status;
		o.at = rec.at;
		rec.json = JSON.stringify(o);
	}
	return rec.json;
}

// ---------------------------------------------------------------------------
// The SMPP server.
function onBind(conn, pdu) {
	const type = BIND_TYPES[pdu.command];
	if (conn.type) {
		conn.send(pdu.response({command_status: S.RALYBND}));
		return;
	}
	let status = S.ROK;
	if (Date.now() < refuseUntil) {
		status = S.RBINDFAIL;
	} else if (pdu.system_id !== cfg.system_id) {
		status = cfg.bind_fail_status !== null ? cfg.bind_fail_status : S.RINVSYSID;
	} else if (pdu.password !== cfg.password) {
		status = cfg.bind_fail_status !== null ? cfg.bind_fail_status : S.RINVPASWD;
	}
	if (status !== S.ROK) {
		counters.bind_failures++;
		log(`conn ${conn.id}: ${pdu.command} ${JSON.stringify(pdu.system_id)} refused with 0x${status.toString(16)}`);
		if (cfg.bind_error_body) {
			// The library drops the body of any PDU with a non-zero status.
			const raw = pdu.response({system_id: cfg.smsc_system_id}).toBuffer();
			raw.writeUInt32BE(status, 8);
			if (!conn.closed) {
				conn.session.socket.write(raw);
			}
		} else {
			conn.send(pdu.response({command_status: status}));
		}
		return;
	}
	conn.type = type;
	conn.systemId = pdu.system_id;
	counters.binds_total++;
	conn.send(pdu.response({system_id: cfg.smsc_system_id}));
	log(`conn ${conn.id}: bound ${type} ${conn.systemId}`);
	if (conn.canReceive()) {
		flushReceipts(conn);
	}
}

function onPDU(conn, pdu) {
	if (args.verbose) {
		log(`conn ${conn.id}: < ${pdu.command} seq=${pdu.sequence_number} status=${pdu.command_status}`);
	}
	const cmd = pdu.command;
	if (BIND_TYPES[cmd]) {
		onBind(conn, pdu);
		return;
	}
	switch (cmd) {
	case 'enquire_link':
		counters.enquire_links++;
		conn.send(pdu.response());
		return;
	case 'unbind':
		counters.unbinds++;
		conn.session.send(pdu.response(), () => conn.session.close());
		conn.type = null;
		return;
	case 'deliver_sm_resp':
	case 'generic_nack':
		conn.onDeliverResp(pdu);
		return;
	case 'unknown':
		counters.generic_nacks++;
		conn.send(pdu.response()); // generic_nack, ESME_RINVCMDID
		return;
	}
	if (pdu.isResponse()) {
		return; // a response to nothing we sent: ignore
	}
	if (!conn.type) {
		respondOrNack(conn, pdu, S.RINVBNDSTS);
		return;
	}
	if (cmd === 'submit_sm') {
		if (conn.type === 'receiver') {
			conn.send(pdu.response({command_status: S.RINVBNDSTS}));
			return;
		}
		onSubmit(conn, pdu);
		return;
	}
	respondOrNack(conn, pdu, S.RINVCMDID);
}

function respondOrNack(conn, pdu, status) {
	if (smpp.commands[pdu.command + '_resp']) {
		conn.send(pdu.response({command_status: status}));
	} else {
		counters.generic_nacks++;
		conn.send(new smpp.PDU('generic_nack', {sequence_number: pdu.sequence_number, command_status: status}));
	}
}

// With --tls-cert and --tls-key the SMPP listener speaks TLS (the
// library's SecureServer: sessions start once the handshake is done).
const serverOptions = {};
if (args.tlsCert) {
	try {
		serverOptions.cert = fs.readFileSync(args.tlsCert);
		serverOptions.key = fs.readFileSync(args.tlsKey);
	} catch (e) {
		fatal(`reading the TLS certificate or key: ${e.message}`);
	}
}
const server = smpp.createServer(serverOptions, (session) => {
	counters.connections_total++;
	if (Date.now() < refuseUntil && refuseMode === 'close') {
		counters.connections_refused++;
		session.on('error', () => {});
		session.destroy();
		return;
	}
	const conn = new Conn(session);
	conns.add(conn);
	session.on('pdu', (pdu) => {
		try {
			onPDU(conn, pdu);
		} catch (e) {
			log(`conn ${conn.id}: handling ${pdu.command}: ${e.stack}`);
		}
	});
	session.on('error', (e) => {
		if (args.verbose || e.code !== 'ECONNRESET') {
			log(`conn ${conn.id}: ${e.message}`);
		}
		// A parse error leaves the library's reader stuck: drop the connection.
		session.destroy();
	});
	session.on('close', () => conn.onClose());
});
server.on('error', (e) => fatal(`smpp listener: ${e.message}`));
// A failed TLS handshake (the client does not trust the certificate) is
// counted and logged; it never reaches the session handler.
server.on('tlsClientError', (e) => {
	counters.tls_client_errors++;
	log(`TLS handshake failed: ${e.message}`);
});

// ---------------------------------------------------------------------------
// MO (deliver_sm from a handset).
function buildMO(m) {
	const base = {
		source_addr_ton: m.from_ton !== undefined ? m.from_ton : 1,
		source_addr_npi: m.from_npi !== undefined ? m.from_npi : 1,
		source_addr: String(m.from || ''),
		dest_addr_ton: m.to_ton !== undefined ? m.to_ton : 1,
		dest_addr_npi: m.to_npi !== undefined ? m.to_npi : 1,
		destination_addr: String(m.to || ''),
	};
	if (m.raw) {
		const o = Object.assign({}, base, {
			esm_class: m.raw.esm_class || 0,
			data_coding: m.raw.data_coding || 0,
			short_message: Buffer.from(m.raw.short_message_hex || '', 'hex'),
		});
		if (m.raw.message_payload_hex) {
			o.message_payload = Buffer.from(m.raw.message_payload_hex, 'hex');
		}
		if (o.short_message.length > 254) {
			throw new HTTPError(400, 'raw short_message longer than 254 octets');
		}
		return [{num: 1, opts: o}];
	}
	if (typeof m.text !== 'string') {
		throw new HTTPError(400, 'text (a string) or raw is required');
	}
	const coding = m.coding || 'gsm';
	const concat = m.concat || 'none';
	if (!['gsm', 'ucs2'].includes(coding)) {
		throw new HTTPError(400, 'coding must be gsm or ucs2');
	}
	if (!['none', 'udh8', 'udh16', 'sar'].includes(concat)) {
		throw new HTTPError(400, 'concat must be none, udh8, udh16 or sar');
	}
	const dc = coding === 'gsm' ? 0x00 : 0x08;
	const units = coding === 'gsm' ? gsmUnits(m.text) : ucs2Units(m.text);
	if (concat === 'none') {
		const body = coding === 'gsm' ? Buffer.from(units.flat()) : ucs2Bytes(units);
		const o = Object.assign({}, base, {esm_class: 0, data_coding: dc});
		if (m.payload) {
			o.short_message = Buffer.alloc(0);
			o.message_payload = body;
		} else {
			if (body.length > 254) {
				throw new HTTPError(400, `message is ${body.length} octets: use concat or payload`);
			}
			o.short_message = body;
		}
		return [{num: 1, opts: o}];
	}
	const perPart = coding === 'gsm' ? (concat === 'udh16' ? 152 : 153) : (concat === 'udh16' ? 66 : 67);
	const bodies = coding === 'gsm' ? splitGSM(units, perPart) : splitUCS2(units, perPart);
	const total = bodies.length;
	if (total > 255) {
		throw new HTTPError(400, `message needs ${total} parts (max 255)`);
	}
	let ref = m.ref;
	if (ref === undefined || ref === null) {
		ref = nextMORef++;
	}
	ref = concat === 'udh8' ? ref & 0xFF : ref & 0xFFFF;
	return bodies.map((body, i) => {
		const seq = i + 1;
		const o = Object.assign({}, base, {data_coding: dc});
		if (concat === 'sar') {
			o.esm_class = 0;
			o.short_message = body;
			o.sar_msg_ref_num = ref;
			o.sar_total_segments = total;
			o.sar_segment_seqnum = seq;
		} else {
			const udh = concat === 'udh8' ?
				Buffer.from([0x05, 0x00, 0x03, ref, total, seq]) :
				Buffer.from([0x06, 0x08, 0x04, ref >> 8, ref & 0xFF, total, seq]);
			o.esm_class = 0x40;
			o.short_message = Buffer.concat([udh, body]);
		}
		return {num: seq, opts: o};
	});
}

async function sendMO(m) {
	const parts = buildMO(m);
	let order = parts.map((p) => p.num);
	if (Array.isArray(m.parts_order)) {
		for (const n of m.parts_order) {
			if (!order.includes(n)) {
				throw new HTTPError(400, `parts_order: no part ${n} (parts are 1..${parts.length})`);
			}
		}
		order = m.parts_order.slice();
	}
	if (Array.isArray(m.omit_parts)) {
		order = order.filter((n) => !m.omit_parts.includes(n));
	}
	const systemId = m.system_id !== undefined ? m.system_id : null;
	let conn = receiverFor(systemId, null);
	if (!conn) {
		throw new HTTPError(409, 'no receiver or transceiver bound');
	}
	const statuses = [];
	for (const n of order) {
		if (!conn.canReceive()) {
			conn = receiverFor(systemId, null);
		}
		if (!conn) {
			statuses.push(null);
			continue;
		}
		counters.mo_sent++;
		const c = conn;
		const status = await new Promise((resolve) => c.deliver(parts[n - 1].opts, resolve));
		if (status === 0) {
			counters.mo_acked++;
		} else if (status === null || status === undefined) {
			counters.mo_timeouts++;
		} else {
			counters.mo_nacked++;
		}
		statuses.push(status === undefined ? null : status);
	}
	return {statuses, sent: order, parts: parts.length};
}

// ---------------------------------------------------------------------------
// Drop.
async function drop(body) {
	const ms = Number(body.refuse_binds_ms || 0);
	const mode = body.refuse_mode || 'close';
	if (!['close', 'bindfail'].includes(mode) || !(ms >= 0)) {
		throw new HTTPError(400, 'refuse_binds_ms must be a number >= 0, refuse_mode close or bindfail');
	}
	refuseMode = mode;
	refuseUntil = ms > 0 ? Date.now() + ms : 0;
	const all = [...conns];
	counters.drops += all.length;
	await Promise.all(all.map((c) => new Promise((resolve) => {
		if (c.session.socket.destroyed && c.closed) {
			resolve();
			return;
		}
		c.session.socket.once('close', resolve);
		c.session.destroy();
	})));
	log(`drop: ${all.length} connection(s) destroyed, refusing binds for ${ms} ms (${refuseMode})`);
	return {dropped: all.length};
}

// ---------------------------------------------------------------------------
// Control API.
class HTTPError extends Error {
	constructor(status, msg) {
		super(msg);
		this.status = status;
	}
}

function stats() {
	let active = 0;
	let receivers = 0;
	for (const c of conns) {
		if (c.type) {
			active++;
		}
		if (c.canReceive()) {
			receivers++;
		}
	}
	let queued = 0;
	for (const q of pendingReceipts.values()) {
		queued += q.length;
	}
	return Object.assign({binds_active: active, receivers_active: receivers, connections_active: conns.size, receipts_queued: queued}, counters);
}

function readBody(req) {
	return new Promise((resolve, reject) => {
		const chunks = [];
		req.on('data', (c) => chunks.push(c));
		req.on('end', () => {
			const s = Buffer.concat(chunks).toString('utf8');
			if (s.trim() === '') {
				resolve({});
				return;
			}
			try {
				const v = JSON.parse(s);
				if (v === null || typeof v !== 'object' || Array.isArray(v)) {
					reject(new HTTPError(400, 'body must be a JSON object'));
					return;
				}
				resolve(v);
			} catch (e) {
				reject(new HTTPError(400, `bad JSON: ${e.message}`));
			}
		});
		req.on('error', reject);
	});
}

async function route(req, res) {
	const url = new URL(req.url, 'http://x');
	const key = `${req.method} ${url.pathname}`;
	switch (key) {
	case 'GET /config':
		return cfg;
	case 'PUT /config': {
		const body = await readBody(req);
		const next = clone(cfg);
		try {
			mergeConfig(next, body, DEFAULTS, '');
			checkConfig(next);
		} catch (e) {
			throw new HTTPError(400, e.message);
		}
		cfg = next;
		if (body.throttle && 'first' in body.throttle) {
			throttleFirstLeft = cfg.throttle.first;
		}
		if (body.throttle && 'every' in body.throttle) {
			throttleEveryCount = 0;
		}
		if ('max_tps' in body) {
			tpsRing = null;
		}
		return cfg;
	}
	case 'GET /submits': {
		const since = Math.max(0, Number(url.searchParams.get('since') || 0));
		const limitParam = url.searchParams.get('limit');
		const end = limitParam === null ? submits.length : Math.min(submits.length, since + Number(limitParam));
		const parts = [];
		for (let i = since; i < end; i++) {
			parts.push(submitJSON(submits[i]));
		}
		res.writeHead(200, {'Content-Type': 'application/json'});
		res.end('[' + parts.join(',') + ']');
		return undefined;
	}
	case 'GET /submits/count':
		return {count: submits.length};
	case 'GET /stats':
		return stats();
	case 'POST /mo':
		return sendMO(await readBody(req));
	case 'POST /drop':
		return drop(await readBody(req));
	case 'POST /reset':
		await readBody(req);
		resetState();
		return {ok: true};
	}
	throw new HTTPError(404, `no route ${key}`);
}

const control = http.createServer((req, res) => {
	route(req, res).then((out) => {
		if (out !== undefined) {
			res.writeHead(200, {'Content-Type': 'application/json'});
			res.end(JSON.stringify(out));
		}
	}, (e) => {
		const status = e instanceof HTTPError ? e.status : 500;
		if (status === 500) {
			log(`control ${req.method} ${req.url}: ${e.stack}`);
		}
		res.writeHead(status, {'Content-Type': 'application/json'});
		res.end(JSON.stringify({error: e.message}));
	});
});
control.on('error', (e) => fatal(`control listener: ${e.message}`));

// ---------------------------------------------------------------------------
// Start and stop.
function shutdown(code) {
	for (const c of conns) {
		c.session.destroy();
	}
	process.exit(code);
}
process.on('SIGTERM', () => shutdown(0));
process.on('SIGINT', () => shutdown(0));
if (args.stdinEOF) {
	process.stdin.on('end', () => shutdown(0));
	process.stdin.on('error', () => shutdown(0));
	process.stdin.resume();
}

server.listen(args.smppPort, args.host, () => {
	control.listen(args.controlPort, args.host, () => {
		process.stdout.write(JSON.stringify({smpp: server.address().port, control: control.address().port}) + '\n');
		log(`listening: smpp${args.tlsCert ? ' (TLS)' : ''} ${args.host}:${server.address().port}, control http://${args.host}:${control.address().port}`);
	});
});
