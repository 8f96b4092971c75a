/*
 * pcs.js - the PCs page: every client in a live table (GET clients every
 * 2 s), filter and click-to-sort, the overlay bar, and the per-row
 * actions reset, policy, wake and remove, plus the "add PC" form; a
 * PC's extra disks (LUN 1..) are listed under its image.
 * Rows carry data-client (the client's name); bars data-used/data-limit.
 */
'use strict';
(function () {
	const st = { clients: [], images: {}, sort: 'name', desc: false, filter: '' };
	const POLICIES = ['persistent', 'reset-on-boot', 'scheduled'];

	/* The URL id of a client: its name (or IQN), encoded. */
	const cid = (c) => encodeURIComponent(c.name || c.initiator);

	/* The bar of overlay used against the quota, or against the image's
	 * size when the PC has no quota (labelled so). */
	function bar(c) {
		const img = st.images[c.image];
		const quota = c.quota_bytes || 0;
		const limit = quota || (img ? img.size_bytes : 0);
		const used = c.used_bytes || 0;
		const pct = limit ? Math.min(100, used * 100 / limit) : 0;
		const fill = P.el('span', { class: 'fill' + (pct >= 90 ? ' high' : '') });
		fill.style.width = pct.toFixed(1) + '%';
		const label = P.size(used) + ' / ' + (quota ? P.size(quota) + ' quota'
			: limit ? P.size(limit) + ' image' : '?');
		return P.el('div', { class: 'bar', 'data-used': used, 'data-limit': limit,
			title: label }, fill, P.el('span', { class: 'label', text: label }));
	}

	/* When the PC last booted and how long it took, or that it is booting now. */
	function lastBoot(c) {
		if (c.booting) return P.el('span', { class: 'tag warn', text: 'booting' });
		if (!c.last_boot) return 'never';
		let s = P.time(c.last_boot);
		if (c.last_boot_seconds !== undefined && c.last_boot_seconds !== null)
			s += ' (' + Number(c.last_boot_seconds).toFixed(1) + ' s)';
		return s;
	}

	/* Where a client last logged in or booted from, and the addresses it
	 * is bound to (ip =) when it has such rules, as text. */
	function ip(c) {
		const rules = Array.isArray(c.ip) ? c.ip.join(', ') : (c.ip || '');
		if (c.address && rules) return c.address + ' (bound: ' + rules + ')';
		return c.address || rules;
	}

	/* Reset after a confirmation; an online PC needs "force" (its session is dropped). */
	async function reset(c) {
		const ans = await P.confirm(`Reset ${c.name}? Its overlay (${P.size(c.used_bytes)}) is discarded: ` +
			'the PC boots the image as it is again.', {
			force: c.online ? 'force: the PC is online, drop its session' : null,
			forceChecked: false, ok: 'Reset',
		});
		if (ans) await P.act('reset ' + c.name, 'POST', `clients/${cid(c)}/reset`, { force: ans.force });
	}

	/* Remove after a confirmation (force for an online PC). */
	async function remove(c) {
		const ans = await P.confirm(`Remove ${c.name} and its overlay?`, {
			force: c.online ? 'force: the PC is online' : null, ok: 'Remove',
		});
		if (ans) await P.act('remove ' + c.name, 'POST', `clients/${cid(c)}/remove`, { force: ans.force });
	}

	/* Send the magic packet and say whether it went (the daemon lists a PC it
	 * could not wake under "skipped" with why); without Wake-on-LAN: 501. */
	async function wake(c) {
		try {
			const j = await P.api('POST', `clients/${cid(c)}/wake`, {});
			const w = (j.woken || [])[0], sk = (j.skipped || [])[0];
			if (w) P.toast(`wake ${c.name}: magic packet sent` + (w.via ? ' via ' + w.via : ''));
			else P.toast(`wake ${c.name}: not sent: ` + (sk && sk.why ? sk.why : 'no packet sent'), true);
		} catch (e) {
			if (e.status === 501) P.toast('wake: not available in this pristined (501)', true);
			else if (e.status !== 401) P.toast('wake ' + c.name + ': ' + e.message, true);
		}
	}

	/* A select that sets the policy as soon as it changes. */
	function policySelect(c) {
		const s = P.el('select', { class: 'policy', 'aria-label': 'policy of ' + c.name },
			POLICIES.map((p) => P.el('option', { value: p, selected: p === c.policy, text: p })));
		s.addEventListener('change', () => P.act(`policy of ${c.name}`, 'POST',
			`clients/${cid(c)}/set`, { policy: s.value }));
		return s;
	}

	/* The PC's extra disks (LUN 1..), one line each under its image:
	 * LUN, image, version (and the current one when it is behind),
	 * policy.  Read-only: the CLI and the API change them. */
	function extraDisks(c) {
		const xs = (c.disks || []).filter((d) => d.lun > 0);
		if (!xs.length) return null;
		return P.el('div', { class: 'sub disks' }, ...xs.map((d) => P.el('div', {
			class: 'disk', 'data-lun': d.lun, title: d.error || '',
			text: `LUN ${d.lun}: ${d.image} v${d.version}` +
				(d.current_version > d.version ? ` (v${d.current_version} current)` : '') +
				(d.draft ? ' draft' : '') + `, ${d.policy}` + (d.error ? ' - error' : ''),
		})));
	}

	/* One client as a table row (a card on phones: each cell has its label). */
	function row(c) {
		const td = (label, ...kids) => P.el('td', { 'data-label': label }, ...kids);
		const err = c.overlay_error || '';
		return P.el('tr', { 'data-client': c.name, class: c.online ? 'online' : 'offline' },
			td('Name', P.el('strong', { text: c.name }),
				c.name !== c.initiator ? P.el('div', { class: 'sub', text: c.initiator }) : null),
			td('MAC', c.mac || ''),
			td('IP', ip(c)),
			td('Image', P.el('span', { class: 'image', text: c.image }), ' ',
				P.el('span', { class: 'version', text: 'v' + c.version }),
				c.maintains ? P.el('span', { class: 'tag draft', text: 'draft of ' + c.maintains.image }) : null,
				extraDisks(c)),
			td('Sessions', P.el('span', { class: 'dot ' + (c.online ? 'on' : 'off'),
				title: c.online ? 'online' : 'offline' }),
				P.el('span', { class: 'sessions', text: c.online ? String(c.sessions) : 'off' })),
			td('Policy', policySelect(c)),
			td('Overlay', bar(c)),
			td('Last boot', lastBoot(c)),
			td('Reset due', c.reset_due ? P.el('span', { class: 'tag warn', text: 'due' })
				: (c.reset_at || '')),
			td('Errors', err ? P.el('span', { class: 'tag error', text: err }) : ''),
			td('Actions',
				P.el('button', { type: 'button', class: 'reset danger', onclick: () => reset(c), text: 'Reset' }),
				P.el('button', { type: 'button', class: 'wake', onclick: () => wake(c), text: 'Wake' }),
				P.el('button', { type: 'button', class: 'remove quiet', onclick: () => remove(c), text: 'Remove' })));
	}

	/* The value a column sorts by. */
	function key(c, k) {
		const v = k === 'image' ? c.image + ' ' + String(c.version).padStart(6, '0')
			: k === 'ip' ? ip(c) : c[k];
		return v === null || v === undefined ? '' : v;
	}

	/* The table from the kept list: filtered, sorted, with the counts in the heading. */
	function render() {
		const body = P.$('pcs-body');
		/* Do not pull a policy select away from under the admin's hand. */
		if (body.contains(document.activeElement) && document.activeElement.tagName === 'SELECT') return;
		const f = st.filter.toLowerCase();
		let list = st.clients.filter((c) => !f ||
			[c.name, c.initiator, c.mac, ip(c), c.image, 'v' + c.version, c.policy]
				.some((x) => x && String(x).toLowerCase().includes(f)));
		list.sort((a, b) => {
			const x = key(a, st.sort), y = key(b, st.sort);
			const r = typeof x === 'number' && typeof y === 'number' ? x - y
				: String(x).localeCompare(String(y), undefined, { numeric: true });
			return st.desc ? -r : r;
		});
		body.replaceChildren(...list.map(row));
		P.$('pc-count').textContent = `${st.clients.filter((c) => c.online).length} online / ${st.clients.length}`;
		P.$('pcs-empty').hidden = st.clients.length > 0;
		for (const th of document.querySelectorAll('#pcs th[data-sort]')) {
			th.classList.toggle('sorted', th.dataset.sort === st.sort);
			th.classList.toggle('desc', th.dataset.sort === st.sort && st.desc);
		}
	}

	/* GET images: sizes for the bars, names for the add form. */
	async function loadImages() {
		const j = await P.api('GET', 'images');
		st.images = {};
		for (const i of j.images || []) st.images[i.name] = i;
		const sel = P.$('add-image');
		const keep = sel.value;
		sel.replaceChildren(P.el('option', { value: '', text: '(default)' }),
			...Object.keys(st.images).map((n) => P.el('option', { value: n, text: n })));
		sel.value = keep;
	}

	/* GET clients and images, then draw. */
	async function refresh() {
		const [j] = await Promise.all([P.api('GET', 'clients'), loadImages()]);
		st.clients = j.clients || [];
		render();
	}

	/* The add form: POST clients with the fields filled in. */
	async function add(ev) {
		ev.preventDefault();
		const body = { initiator: P.$('add-initiator').value.trim() };
		for (const [k, id] of [['name', 'add-name'], ['image', 'add-image'], ['mac', 'add-mac'],
			['quota', 'add-quota'], ['policy', 'add-policy']]) {
			const v = P.$(id).value.trim();
			if (v) body[k] = v;
		}
		if (await P.act('add ' + (body.name || body.initiator), 'POST', 'clients', body)) {
			P.$('pc-add').reset();
			P.$('pc-add').hidden = true;
		}
	}

	/* Wire the filter, the column headers and the add form (once, at load). */
	function init() {
		P.$('pc-filter').addEventListener('input', (e) => { st.filter = e.target.value; render(); });
		for (const th of document.querySelectorAll('#pcs th[data-sort]')) {
			th.addEventListener('click', () => {
				if (st.sort === th.dataset.sort) st.desc = !st.desc;
				else { st.sort = th.dataset.sort; st.desc = false; }
				render();
			});
		}
		P.$('pc-add-open').addEventListener('click', () => {
			P.$('pc-add').hidden = !P.$('pc-add').hidden;
			if (!P.$('pc-add').hidden) P.$('add-initiator').focus();
		});
		P.$('add-cancel').addEventListener('click', () => { P.$('pc-add').hidden = true; });
		P.$('pc-add').addEventListener('submit', add);
	}

	document.addEventListener('DOMContentLoaded', init);
	P.page('pcs', { refresh, clients: () => st.clients });
})();
