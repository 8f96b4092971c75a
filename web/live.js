/*
 * live.js - the Live page: MiB/s and IOPS, read and write, for the
 * server and for one chosen PC, from the differences between two polls
 * of GET stats (cumulative counters with time_ms).  Polls in the
 * background so the charts have a history when the page is opened.
 * Until pristined has stats (501) the page says so.
 */
'use strict';
(function () {
	const st = { prev: null, pc: '', charts: null, unavailable: false };
	const MIB = 1024 * 1024;
	const RW = [{ label: 'read', color: '#1f77b4' }, { label: 'write', color: '#d62728' }];

	/* The four charts, made on first use (the canvases exist by then). */
	function charts() {
		if (!st.charts) st.charts = {
			smib: new LineChart(P.$('chart-server-mib'), { series: RW, unit: 'MiB/s' }),
			siops: new LineChart(P.$('chart-server-iops'), { series: RW, unit: 'IOPS' }),
			pmib: new LineChart(P.$('chart-pc-mib'), { series: RW, unit: 'MiB/s' }),
			piops: new LineChart(P.$('chart-pc-iops'), { series: RW, unit: 'IOPS' }),
		};
		return st.charts;
	}

	/* Rates between two counter sets a and b over dt seconds. */
	function rates(a, b, dt) {
		const d = (k) => Math.max(0, ((b && b[k]) || 0) - ((a && a[k]) || 0)) / dt;
		return { rmib: d('read_bytes') / MIB, wmib: d('write_bytes') / MIB, riops: d('read_cmds'), wiops: d('write_cmds') };
	}

	const byName = (s, n) => (s.clients || []).find((c) => c.name === n || c.initiator === n);

	/* The PC select from the stats' clients; a PC that went away is replaced (first online). */
	function pcList(s) {
		const sel = P.$('live-pc');
		const names = (s.clients || []).map((c) => c.name || c.initiator);
		if (sel.options.length === names.length && [...sel.options].every((o, i) => o.value === names[i])) return;
		sel.replaceChildren(...names.map((n) => P.el('option', { value: n, text: n })));
		if (names.includes(st.pc)) sel.value = st.pc;
		else {
			/* the first PC online, else the first */
			const on = (s.clients || []).find((c) => c.sessions > 0);
			st.pc = on ? on.name || on.initiator : names[0] || '';
			sel.value = st.pc;
			charts().pmib.clear(); charts().piops.clear();
		}
	}

	/* GET stats; from the second answer on, add the rates since the previous one to the charts. */
	async function poll() {
		if (st.unavailable) return;
		let s;
		try {
			s = await P.api('GET', 'stats');
		} catch (e) {
			if (e.status === 501 || e.status === 404) {
				st.unavailable = true;
				P.$('live-note').textContent = 'This pristined has no statistics yet (' + e.status + ' ' + e.message + ').';
				P.$('live-note').hidden = false;
				return;
			}
			throw e;
		}
		const ch = charts();
		pcList(s);
		if (st.prev && s.time_ms > st.prev.time_ms) {
			const dt = (s.time_ms - st.prev.time_ms) / 1000;
			const r = rates(st.prev.server, s.server, dt);
			ch.smib.push(s.time_ms, [r.rmib, r.wmib]);
			ch.siops.push(s.time_ms, [r.riops, r.wiops]);
			const a = byName(st.prev, st.pc), b = byName(s, st.pc);
			if (b) {
				const p = rates(a || b, b, dt);
				ch.pmib.push(s.time_ms, [p.rmib, p.wmib]);
				ch.piops.push(s.time_ms, [p.riops, p.wiops]);
			}
		}
		P.$('cap-pc-mib').textContent = (st.pc || 'PC') + ', MiB/s';
		P.$('cap-pc-iops').textContent = (st.pc || 'PC') + ', IOPS';
		st.prev = s;
	}

	/* The page shown: draw at the size the canvases now have. */
	function show() {
		const ch = charts();
		for (const c of Object.values(ch)) c.draw();
	}

	/* A new login: start the history again, try stats again. */
	function enter() {
		st.prev = null;
		st.unavailable = false;
		P.$('live-note').hidden = true;
	}

	document.addEventListener('DOMContentLoaded', () => {
		P.$('live-pc').addEventListener('change', (e) => {
			st.pc = e.target.value;
			charts().pmib.clear(); charts().piops.clear();
		});
	});
	/* What the charts hold, for tests: {unavailable, server: {t, read, write}, ...}. */
	function data() {
		const ch = charts(), one = (c) => ({ t: c.t.slice(), read: c.v[0].slice(), write: c.v[1].slice() });
		return { unavailable: st.unavailable, pc: st.pc, smib: one(ch.smib), siops: one(ch.siops),
			pmib: one(ch.pmib), piops: one(ch.piops) };
	}

	P.page('live', { refresh: poll, background: poll, show, enter, data });
})();
