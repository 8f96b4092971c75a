/*
 * chart.js - a small line chart of our own on <canvas>: a time axis
 * (seconds ago), a value axis with round ticks, and up to a few series
 * with a legend.  new LineChart(canvas, {series: [{label, color}], unit,
 * keep}); chart.push(timeMs, [v0, v1]); chart.draw().
 */
'use strict';
class LineChart {
	/* opts.keep: points kept per series (default 90). */
	constructor(canvas, opts) {
		this.c = canvas;
		this.series = opts.series;
		this.unit = opts.unit || '';
		this.keep = opts.keep || 90;
		this.t = [];
		this.v = this.series.map(() => []);
	}

	/* Forget every point (another PC chosen). */
	clear() { this.t = []; this.v = this.series.map(() => []); this.draw(); }

	/* Add one point per series at time t (ms), dropping the oldest beyond keep; redraw. */
	push(t, values) {
		this.t.push(t);
		values.forEach((x, i) => this.v[i].push(x));
		if (this.t.length > this.keep) { this.t.shift(); this.v.forEach((s) => s.shift()); }
		this.draw();
	}

	/* A round top for the value axis: 1, 2 or 5 times a power of ten. */
	static niceMax(m) {
		if (!(m > 0)) return 1;
		const p = Math.pow(10, Math.floor(Math.log10(m)));
		for (const k of [1, 2, 5, 10]) if (k * p >= m) return k * p;
		return 10 * p;
	}

	/* A value for a label: 3 significant digits at most, small ones too. */
	static fmt(x) {
		if (x === 0 || x >= 100) return x.toFixed(0);
		if (x >= 1) return x.toFixed(x >= 10 ? 1 : 2);
		return String(Number(x.toPrecision(2)));
	}

	/* Draw everything again at the canvas's CSS size times the pixel ratio. */
	draw() {
		const c = this.c, dpr = window.devicePixelRatio || 1;
		const w = c.clientWidth || c.width, h = c.clientHeight || c.height;
		if (c.width !== Math.round(w * dpr)) { c.width = Math.round(w * dpr); c.height = Math.round(h * dpr); }
		const g = c.getContext('2d');
		g.setTransform(dpr, 0, 0, dpr, 0, 0);
		g.clearRect(0, 0, w, h);
		const css = getComputedStyle(c);
		const ink = css.color || '#333';
		const L = 48, R = 20, T = 22, B = 22, pw = w - L - R, ph = h - T - B;
		const max = LineChart.niceMax(Math.max(0, ...this.v.flat()));
		const span = 2000 * (this.keep - 1);
		const now = this.t.length ? this.t[this.t.length - 1] : 0;
		const X = (t) => L + pw - (now - t) / span * pw;
		const Y = (v) => T + ph - v / max * ph;
		g.font = '11px sans-serif';
		g.lineWidth = 1;
		/* value axis: 5 ticks with grid lines */
		g.textAlign = 'right'; g.textBaseline = 'middle';
		for (let i = 0; i <= 4; i++) {
			const v = max * i / 4, y = Y(v);
			g.strokeStyle = i ? 'rgba(128,128,128,0.25)' : ink;
			g.beginPath(); g.moveTo(L, y); g.lineTo(L + pw, y); g.stroke();
			g.fillStyle = ink; g.fillText(LineChart.fmt(v), L - 4, y);
		}
		/* time axis: seconds ago */
		g.textAlign = 'center'; g.textBaseline = 'top';
		for (let s = 0; s <= span / 1000; s += 30) {
			const x = L + pw - s * 1000 / span * pw;
			g.strokeStyle = ink; g.beginPath(); g.moveTo(x, T + ph); g.lineTo(x, T + ph + 4); g.stroke();
			g.fillText(s ? '-' + s + ' s' : 'now', x, T + ph + 6);
		}
		g.strokeStyle = ink; g.beginPath(); g.moveTo(L, T); g.lineTo(L, T + ph); g.stroke();
		/* series and legend */
		g.textAlign = 'left'; g.textBaseline = 'middle';
		let lx = L;
		this.series.forEach((s, i) => {
			g.strokeStyle = s.color; g.lineWidth = 2;
			g.beginPath();
			this.t.forEach((t, k) => { const x = X(t), y = Y(this.v[i][k]); k ? g.lineTo(x, y) : g.moveTo(x, y); });
			g.stroke();
			g.fillStyle = s.color; g.fillRect(lx, 6, 10, 10);
			g.fillStyle = ink;
			const last = this.v[i].length ? ' ' + LineChart.fmt(this.v[i][this.v[i].length - 1]) : '';
			const label = s.label + last + ' ' + this.unit;
			g.fillText(label, lx + 14, 11);
			lx += g.measureText(label).width + 30;
		});
	}
}
window.LineChart = LineChart;
