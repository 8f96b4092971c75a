/*
 * images.js - the Images page: per image its versions on a timeline
 * (oldest to newest, the current one marked), the draft and its
 * maintenance PC, each version's boot set (size, how learned, share in
 * memory), the actions edit, commit, discard, rollback, flatten and
 * export, and the jobs (GET jobs) with progress bars.
 * Cards carry data-image; timeline entries data-version (.current).
 */
'use strict';
(function () {
	const st = { shown: {} };   /* image name -> JSON of what its card shows */

	const iid = (n) => encodeURIComponent(n);

	/* A version's boot set (warm boots) in words: its size, how it was
	 * learned and its share in memory now; '' when it has none. */
	function bootSet(b) {
		if (!b || !b.bytes) return '';
		const learned = b.boots ? b.boots + ' boot' + (b.boots === 1 ? '' : 's')
			: (b.inherited_from ? 'from v' + b.inherited_from : '');
		let mem = '';
		if (b.prefetch === 'queued' || b.prefetch === 'running')
			mem = 'prefetching ' + (b.prefetch_total_bytes
				? Math.floor(100 * b.prefetched_bytes / b.prefetch_total_bytes) : 0) + '%';
		else if (b.resident_known)
			mem = Math.floor(100 * Math.min(b.resident_bytes, b.bytes) / b.bytes) + '% in memory';
		return ['boot set ' + P.size(b.bytes), learned, mem].filter((x) => x).join(', ');
	}

	/* The versions oldest to newest (deleted ones left out), then the draft if any. */
	function timeline(img, versions) {
		const live = versions.filter((v) => !v.deleted).sort((a, b) => a.version - b.version);
		return P.el('ol', { class: 'timeline' }, live.map((v) =>
			P.el('li', { class: 'step' + (v.current ? ' current' : '') + (v.draft ? ' draft-base' : ''),
				'data-version': v.version },
				P.el('span', { class: 'vnum', text: 'v' + v.version }),
				v.current ? P.el('span', { class: 'tag ok', text: 'current' }) : null,
				P.el('span', { class: 'message', text: v.message || '' }),
				P.el('span', { class: 'date', text: P.time(v.time) }),
				P.el('span', { class: 'sub', text: (v.dependents && v.dependents.clients.length
					? v.dependents.clients.length + ' PC(s)' : '') }),
				P.el('span', { class: 'sub boot-set', text: bootSet(v.boot_set) }))),
		img.draft ? P.el('li', { class: 'step pending', 'data-version': 'draft' },
			P.el('span', { class: 'vnum', text: 'draft' }),
			P.el('span', { class: 'message', text: 'on v' + img.draft.base }),
			P.el('span', { class: 'date', text: P.time(img.draft.opened) })) : null);
	}

	/* A small inline form: inputs (nodes) and a button that runs fn. */
	function form(cls, label, inputs, fn) {
		const f = P.el('form', { class: 'inline-form ' + cls }, inputs,
			P.el('button', { type: 'submit', text: label }));
		f.addEventListener('submit', async (e) => {
			e.preventDefault();
			if (await fn(f)) f.reset();   /* done: empty the fields */
		});
		return f;
	}

	/* The buttons and small forms of one image: draft or edit, rollback, flatten, export. */
	function actions(img, versions, clients) {
		const n = img.name, out = [];
		const path = (a) => `images/${iid(n)}/${a}`;
		if (img.draft) {
			const d = img.draft;
			out.push(P.el('p', { class: 'draft-info' }, 'Draft open on v' + d.base + ', maintenance PC ',
				P.el('strong', { class: 'draft-client', text: d.client }), ' ',
				P.el('span', { class: 'dot ' + (d.online ? 'on' : 'off') }), d.online ? ' online' : ' offline',
				', ' + P.size(d.used_bytes) + ' written'));
			out.push(form('commit', 'Commit', [P.el('input', { name: 'message', class: 'commit-message',
				placeholder: 'what changed', required: true })], async (f) => {
				const force = d.online && (await P.confirm(`The maintenance PC ${d.client} is still online. ` +
					'Commit anyway (its session is dropped)?', { ok: 'Commit' }));
				if (d.online && !force) return;
				await P.act('commit ' + n, 'POST', path('commit'),
					{ message: f.message.value, force: !!force });
			}));
			out.push(P.el('button', { type: 'button', class: 'discard danger', text: 'Discard draft',
				onclick: async () => {
					const a = await P.confirm(`Discard the draft of ${n}? What ${d.client} wrote in it is lost.`,
						{ force: d.online ? 'force: the maintenance PC is online' : null, ok: 'Discard' });
					if (a) await P.act('discard ' + n, 'POST', path('discard'), { force: a.force });
				} }));
		} else {
			const mine = clients.filter((c) => c.image === n);
			out.push(form('edit', 'Open draft', [P.el('select', { name: 'client', 'aria-label': 'maintenance PC' },
				mine.map((c) => P.el('option', { value: c.initiator, text: c.name })))],
			(f) => P.act('draft of ' + n, 'POST', path('edit'), { client: f.client.value })));
		}
		const older = versions.filter((v) => !v.deleted && !v.current);
		if (older.length)
			out.push(form('rollback', 'Roll back', [P.el('select', { name: 'version', 'aria-label': 'version' },
				older.map((v) => P.el('option', { value: v.version, text: 'v' + v.version + ' ' + (v.message || '') })))],
			async (f) => {
				if (await P.confirm(`Roll ${n} back to v${f.version.value}?`, { ok: 'Roll back' }))
					await P.act('rollback ' + n, 'POST', path('rollback'), { version: Number(f.version.value) });
			}));
		out.push(P.el('button', { type: 'button', class: 'flatten', text: 'Flatten', disabled: img.flattening,
			onclick: async () => {
				if (await P.confirm(`Flatten ${n}: fold its versions into one file (a job)?`, { ok: 'Flatten' }))
					await P.act('flatten ' + n, 'POST', path('flatten'), {});
			} }));
		out.push(form('export', 'Export', [P.el('input', { name: 'file', class: 'export-file',
			placeholder: '/srv/export/' + n + '.raw', required: true })],
		(f) => P.act('export ' + n, 'POST', path('export'), { file: f.file.value })));
		return P.el('div', { class: 'actions' }, out);
	}

	/* One image: its heading, timeline and actions. */
	function card(img, versions, clients) {
		return P.el('article', { class: 'panel image-card', 'data-image': img.name },
			P.el('h3', {}, img.name, ' ', P.el('span', { class: 'version', text: 'v' + img.current }),
				P.el('span', { class: 'sub', text: ` ${P.size(img.size_bytes)}, ${img.clients} PC(s), ${img.source}` })),
			timeline(img, versions), actions(img, versions, clients));
	}

	/* The jobs, newest first, each with its progress bar and outcome. */
	function jobs(list) {
		const box = P.$('jobs-list');
		if (!list.length) { box.replaceChildren(P.el('p', { class: 'note', text: 'No jobs.' })); return; }
		box.replaceChildren(...list.slice().reverse().map((j) => {
			const fill = P.el('span', { class: 'fill' + (j.state === 'failed' ? ' high' : '') });
			fill.style.width = (100 * (j.progress || 0)).toFixed(1) + '%';
			return P.el('div', { class: 'job', 'data-job': j.id, 'data-state': j.state },
				P.el('span', { class: 'what', text: `#${j.id} ${j.kind} ${j.image}` }),
				P.el('div', { class: 'bar', 'data-progress': j.progress }, fill,
					P.el('span', { class: 'label', text: `${Math.round(100 * (j.progress || 0))}% ${j.phase || ''}` })),
				P.el('span', { class: 'state ' + j.state, text: j.state }),
				P.el('span', { class: 'sub', text: j.error || j.result || '' }));
		}));
	}

	/* GET images (and each image's versions), clients and jobs; redraw what changed. */
	async function refresh() {
		const [list, cl, jb] = await Promise.all([P.api('GET', 'images'), P.api('GET', 'clients'), P.api('GET', 'jobs')]);
		const box = P.$('images-list');
		const clients = cl.clients || [];
		const shows = await Promise.all((list.images || []).map((i) => P.api('GET', 'images/' + iid(i.name))));
		const names = new Set();
		(list.images || []).forEach((img, k) => {
			names.add(img.name);
			const versions = shows[k].version_list || [];
			const sig = JSON.stringify([img, versions, clients.filter((c) => c.image === img.name).map((c) => c.name)]);
			const old = box.querySelector(`article[data-image="${CSS.escape(img.name)}"]`);
			/* Rebuild a card only when what it shows changed, and not
			 * while the admin is typing in one of its fields. */
			const typing = old && old.contains(document.activeElement) &&
				document.activeElement.tagName === 'INPUT' && document.activeElement.value !== '';
			if (old && (st.shown[img.name] === sig || typing)) return;
			st.shown[img.name] = sig;
			const c = card(img, versions, clients);
			if (old) old.replaceWith(c); else box.append(c);
		});
		for (const a of box.querySelectorAll('article[data-image]'))
			if (!names.has(a.dataset.image)) { delete st.shown[a.dataset.image]; a.remove(); }
		jobs(jb.jobs || []);
	}

	P.page('images', { refresh });
})();
