/*
 * cluster.js - the Cluster panel, shown only when GET cluster answers
 * 200 (a single server answers 404 "not a cluster").  The cluster's JSON
 * is drawn generically: scalars as a list, arrays of objects as tables.
 */
'use strict';
(function () {
	/* A JSON value as nodes: arrays of objects as a table, objects as a list, else text. */
	function value(v) {
		if (Array.isArray(v) && v.length && typeof v[0] === 'object') return table(v);
		if (v && typeof v === 'object') return dl(v);
		return P.el('span', { text: v === null ? '' : String(v) });
	}

	/* Objects as a table, one column per key any of them has. */
	function table(rows) {
		const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
		return P.el('table', { class: 'kv' },
			P.el('thead', {}, P.el('tr', {}, cols.map((c) => P.el('th', { text: c })))),
			P.el('tbody', {}, rows.map((r) => P.el('tr', {}, cols.map((c) =>
				P.el('td', { 'data-label': c }, typeof r[c] === 'object' && r[c] !== null
					? JSON.stringify(r[c]) : String(r[c] === undefined || r[c] === null ? '' : r[c])))))));
	}

	/* An object as a definition list. */
	function dl(o) {
		return P.el('dl', { class: 'kv' }, Object.entries(o).map(([k, v]) =>
			[P.el('dt', { text: k }), P.el('dd', {}, value(v))]));
	}

	/* GET cluster: show the tab on 200, hide it otherwise; the answer or null. */
	async function probe() {
		try {
			const j = await P.api('GET', 'cluster');
			P.$('nav-cluster').hidden = false;
			return j;
		} catch (e) {
			P.$('nav-cluster').hidden = true;
			return null;
		}
	}

	/* Draw the cluster's status, or say this is a single server. */
	async function refresh() {
		const j = await probe();
		P.$('cluster-body').replaceChildren(j ? dl(j) : P.el('p', { class: 'note', text: 'Not a cluster.' }));
	}

	P.page('cluster', { refresh, enter: probe });
})();
