/*
 * events.js - the Events page: the event log (GET events), newest
 * first, its kind as a tag, with a filter by kind.  Rows carry
 * data-seq and data-kind.
 */
'use strict';
(function () {
	const st = { events: [], kind: '' };

	/* The table from the kept events (newest first, filtered by kind); new kinds join the select. */
	function render() {
		const list = st.events.filter((e) => !st.kind || e.kind === st.kind).slice().reverse();
		P.$('events-body').replaceChildren(...list.map((e) =>
			P.el('tr', { 'data-seq': e.seq, 'data-kind': e.kind },
				P.el('td', { 'data-label': 'Time', text: P.time(e.time_ms, true) }),
				P.el('td', { 'data-label': 'Kind' }, P.el('span', { class: 'tag kind-' + e.kind, text: e.kind })),
				P.el('td', { 'data-label': 'PC', text: e.client || '' }),
				P.el('td', { 'data-label': 'Image', text: e.image || '' }),
				P.el('td', { 'data-label': 'What', text: e.text }))));
		P.$('events-note').textContent = 'No events yet.';
		P.$('events-note').hidden = list.length > 0;
		const sel = P.$('events-kind');
		const kinds = [...new Set(st.events.map((e) => e.kind))].sort();
		for (const k of kinds)
			if (![...sel.options].some((o) => o.value === k)) sel.append(P.el('option', { value: k, text: k }));
	}

	/* GET events and draw them. */
	async function refresh() {
		const j = await P.api('GET', 'events');
		st.events = j.events || [];
		render();
	}

	document.addEventListener('DOMContentLoaded', () => {
		P.$('events-kind').addEventListener('change', (e) => { st.kind = e.target.value; render(); });
	});
	P.page('events', { refresh });
})();
