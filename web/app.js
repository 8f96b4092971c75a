/*
 * app.js - the console's core: login and logout, the session (its CSRF
 * token), API calls through /api/v1 with the token on every change, the
 * page switcher and the 2-second poll.  Pages (pcs.js, images.js,
 * live.js, events.js, cluster.js) register with P.page(name, {...}).
 * No framework and no inline code: the server's CSP is default-src 'self'.
 */
'use strict';

const P = window.P = {
	csrf: null,        /* the session's CSRF token, null when logged out */
	pages: {},         /* name -> {show(), refresh(), background?()} */
	current: null,     /* name of the page shown */
	timer: null,
	POLL_MS: 2000,
};

/* An API error: HTTP status and the server's one-line message. */
P.ApiError = class extends Error {
	constructor(status, message) { super(message); this.status = status; }
};

/* Make an element: attrs sets attributes (class, data-*, ...; 'text' sets
 * its text); children are nodes or strings (always text, never HTML). */
P.el = function (tag, attrs, ...children) {
	const e = document.createElement(tag);
	for (const [k, v] of Object.entries(attrs || {})) {
		if (v === null || v === undefined || v === false) continue;
		if (k === 'text') e.textContent = v;
		else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
		else e.setAttribute(k, v === true ? '' : v);
	}
	for (const c of children.flat()) {
		if (c === null || c === undefined) continue;
		e.append(c instanceof Node ? c : document.createTextNode(String(c)));
	}
	return e;
};

P.$ = (id) => document.getElementById(id);

/* Bytes as a short human size (binary units). */
P.size = function (n) {
	if (n === null || n === undefined) return '';
	const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
	let i = 0;
	while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
	return (i ? n.toFixed(n < 10 ? 1 : 0) : n) + ' ' + u[i];
};

/* Unix seconds (or ms when ms is set) as local date and time; '' for 0. */
P.time = function (t, ms) {
	if (!t) return '';
	const d = new Date(ms ? t : t * 1000);
	const p = (x) => String(x).padStart(2, '0');
	return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
};

/* Show a short message for a few seconds (errors stay longer). */
P.toast = function (msg, isError) {
	const t = P.$('toast');
	t.textContent = msg;
	t.classList.toggle('error', !!isError);
	t.hidden = false;
	clearTimeout(P.toastTimer);
	P.toastTimer = setTimeout(() => { t.hidden = true; }, isError ? 8000 : 4000);
};

/*
 * One call of the admin API: method, path under /api/v1/, optional JSON
 * body.  Changes carry X-CSRF-Token.  Resolves to the parsed answer;
 * rejects with P.ApiError.  A 401 anywhere ends the session in the page
 * and shows the login form ("session expired").
 */
P.api = async function (method, path, body) {
	const headers = { 'Accept': 'application/json' };
	if (body !== undefined) headers['Content-Type'] = 'application/json';
	if (method !== 'GET') headers['X-CSRF-Token'] = P.csrf || '';
	let r;
	try {
		r = await fetch('/api/v1/' + path, {
			method, headers, credentials: 'same-origin', cache: 'no-store',
			body: body === undefined ? undefined : JSON.stringify(body),
		});
	} catch (e) {
		throw new P.ApiError(0, 'cannot reach pristined: ' + e.message);
	}
	let j = {};
	try { j = await r.json(); } catch (e) { /* empty or not JSON */ }
	if (r.status === 401) {
		P.expired();
		throw new P.ApiError(401, j.error || 'session expired');
	}
	if (!r.ok) throw new P.ApiError(r.status, j.error || r.statusText);
	return j;
};

/* Run an action, toast its outcome; returns the answer or null. */
P.act = async function (what, method, path, body) {
	try {
		const j = await P.api(method, path, body);
		P.toast(what + ': done');
		P.refresh();
		return j;
	} catch (e) {
		if (e.status !== 401) P.toast(what + ': ' + e.message, true);
		return null;
	}
};

/* The confirmation dialog.  opts.force: label of a "force" checkbox
 * (opts.forceChecked: its initial state).  Resolves to null when
 * cancelled, else {force}. */
P.confirm = function (text, opts) {
	opts = opts || {};
	const d = P.$('confirm');
	P.$('confirm-text').textContent = text;
	P.$('confirm-force-row').hidden = !opts.force;
	P.$('confirm-force-text').textContent = opts.force || '';
	P.$('confirm-force').checked = !!opts.forceChecked;
	P.$('confirm-ok').textContent = opts.ok || 'OK';
	d.returnValue = '';
	return new Promise((resolve) => {
		d.addEventListener('close', () => {
			resolve(d.returnValue === 'ok' ? { force: P.$('confirm-force').checked } : null);
		}, { once: true });
		d.showModal();
	});
};

/* Register a page. */
P.page = function (name, impl) { P.pages[name] = impl; };

/* Show the page named by the URL's fragment (default PCs). */
P.route = function () {
	if (!P.csrf) return;
	let name = location.hash.replace(/^#/, '') || 'pcs';
	if (!P.pages[name] || (name === 'cluster' && P.$('nav-cluster').hidden)) name = 'pcs';
	P.current = name;
	for (const s of document.querySelectorAll('.page')) s.hidden = s.id !== 'page-' + name;
	for (const a of document.querySelectorAll('#nav a'))
		a.classList.toggle('active', a.dataset.page === name);
	if (P.pages[name].show) P.pages[name].show();
	P.refresh();
};

/* Refresh the shown page and run every page's background poll. */
P.refresh = async function () {
	if (!P.csrf) return;
	/* A slow daemon: let the running refresh finish, drop this one. */
	if (P.refreshing) return;
	P.refreshing = true;
	try {
		await P.refreshAll();
	} finally {
		P.refreshing = false;
	}
};

/* One round: the shown page refreshes, the others run their background poll. */
P.refreshAll = async function () {
	for (const [name, pg] of Object.entries(P.pages)) {
		try {
			if (name === P.current && pg.refresh) await pg.refresh();
			else if (pg.background) await pg.background();
		} catch (e) {
			if (e.status === 401) return;
			if (e.status !== undefined) P.toast(e.message, true);
			else console.error(e);
		}
	}
};

/* Logged in: remember the token, show the app, start polling. */
P.enter = function (j) {
	P.csrf = j.csrf;
	P.idle = j.idle_timeout_s;
	P.$('login').hidden = true;
	P.$('app').hidden = false;
	P.$('password').value = '';
	for (const pg of Object.values(P.pages)) if (pg.enter) pg.enter();
	clearInterval(P.timer);
	P.timer = setInterval(P.refresh, P.POLL_MS);
	P.route();
};

/* Logged out, or the server refused the session: stop and show the form. */
P.leave = function (note) {
	P.csrf = null;
	clearInterval(P.timer);
	P.timer = null;
	const d = P.$('confirm');
	if (d.open) d.close('cancel');
	P.$('app').hidden = true;
	P.$('login').hidden = false;
	P.$('login-error').hidden = true;
	P.$('login-note').textContent = note || '';
	P.$('login-note').hidden = !note;
	P.$('password').focus();
};

/* A 401 while logged in: the session ended (idle timeout, restart...). */
P.expired = function () {
	if (P.csrf) P.leave('Session expired: log in again.');
};

/* The login form's submit: POST /login; the app on 200, else the server's error under the form. */
P.login = async function (ev) {
	ev.preventDefault();
	const err = P.$('login-error');
	err.hidden = true;
	let r, j = {};
	try {
		r = await fetch('/login', {
			method: 'POST', credentials: 'same-origin',
			headers: { 'Content-Type': 'application/json', 'Accept': 'application/json' },
			body: JSON.stringify({ password: P.$('password').value }),
		});
		try { j = await r.json(); } catch (e) { /* not JSON */ }
	} catch (e) {
		err.textContent = 'cannot reach pristined: ' + e.message;
		err.hidden = false;
		return;
	}
	if (r.ok && j.csrf) {
		P.$('login-note').hidden = true;
		P.enter(j);
		return;
	}
	err.textContent = j.error || ('login refused (' + r.status + ')');
	err.hidden = false;
	P.$('password').select();
};

/* POST /logout (with the token), then the form, whatever the answer. */
P.logout = async function () {
	try {
		await fetch('/logout', {
			method: 'POST', credentials: 'same-origin',
			headers: { 'X-CSRF-Token': P.csrf || '', 'Content-Type': 'application/json' },
			body: '{}',
		});
	} catch (e) { /* leave anyway */ }
	P.leave('Logged out.');
};

/* At load: an existing session goes straight to the app. */
P.start = async function () {
	P.$('login-form').addEventListener('submit', P.login);
	P.$('logout').addEventListener('click', P.logout);
	window.addEventListener('hashchange', P.route);
	try {
		const r = await fetch('/session', { credentials: 'same-origin', cache: 'no-store' });
		if (r.ok) {
			const j = await r.json();
			if (j.csrf) { P.enter(j); return; }
		}
	} catch (e) { /* fall through to the form */ }
	P.leave('');
};

document.addEventListener('DOMContentLoaded', P.start);
