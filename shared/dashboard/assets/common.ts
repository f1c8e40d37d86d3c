import { RUN_STATUSES, TASK_STATUSES, UNFINISHED_RUN_STATUSES } from '../../lifecycle';

/**
 * The dashboard script's shared part: DOM builders (user text only ever becomes text nodes), the
 * API and action calls, formatting, the status badge and the stacked bar, and the polling timer.
 * Part of app.js (see app.ts); no template literals inside, so that it can live in this string. The
 * statuses come from shared/lifecycle.ts, written into the script as it is built.
 */
export const COMMON_JS = String.raw`  var SVGNS = 'http://www.w3.org/2000/svg';
  var RUN_STATUSES = ${JSON.stringify(RUN_STATUSES)};
  var TASK_STATUSES = ${JSON.stringify(TASK_STATUSES)};
  var LIVE = ${JSON.stringify(Object.fromEntries(UNFINISHED_RUN_STATUSES.map((s) => [s, 1])))};
  var ORDER = ['success', 'failed', 'running', 'dispatched', 'claimed', 'queued', 'waiting', 'skipped', 'cancelled'];
  var PRIORITY = ['failed', 'running', 'dispatched', 'claimed', 'queued', 'waiting', 'cancelled', 'skipped', 'success'];
  var main = document.getElementById('main');
  var timer = null;
  var generation = 0;

  // Elements: attrs.text becomes a text node, attrs.on* become listeners; nothing is parsed as HTML.
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    setAttrs(node, attrs);
    append(node, children);
    return node;
  }
  function svg(tag, attrs, children) {
    var node = document.createElementNS(SVGNS, tag);
    setAttrs(node, attrs);
    append(node, children);
    return node;
  }
  function setAttrs(node, attrs) {
    Object.keys(attrs || {}).forEach(function (k) {
      var v = attrs[k];
      if (v === null || v === undefined || v === false) return;
      if (k === 'text') node.textContent = String(v);
      // Through the CSSOM: the page's CSP refuses style attributes, as it would any injected one.
      else if (k === 'style') node.style.cssText = v;
      else if (k.slice(0, 2) === 'on') node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, String(v));
    });
  }
  function append(node, children) {
    (children || []).forEach(function (c) {
      if (c === null || c === undefined || c === false) return;
      node.appendChild(typeof c === 'object' ? c : document.createTextNode(String(c)));
    });
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  function api(path) {
    return fetch(path, { headers: { accept: 'application/json' } }).then(answer);
  }
  // Actions carry a JSON body and the action header; the browser adds Origin and Sec-Fetch-Site.
  function act(path, body) {
    return fetch(path, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-tickrun-action': '1' },
      body: JSON.stringify(body || {})
    }).then(answer);
  }
  function answer(res) {
    return res.json().then(function (body) {
      if (!res.ok) throw new Error(body && body.error ? body.error : 'HTTP ' + res.status);
      return body;
    });
  }

  function time(iso) { return iso ? iso.replace('T', ' ').replace(/\.\d+Z$/, '') : ''; }
  function duration(ms) {
    if (ms === null || ms === undefined) return '';
    if (ms < 1000) return Math.round(ms) + 'ms';
    if (ms < 60000) return (ms / 1000).toFixed(1) + 's';
    var s = Math.round(ms / 1000);
    if (s < 3600) return Math.floor(s / 60) + 'm' + String(s % 60).padStart(2, '0') + 's';
    return Math.floor(s / 3600) + 'h' + String(Math.floor(s / 60) % 60).padStart(2, '0') + 'm';
  }
  function badge(status) { return el('span', { class: 'badge s-' + status, text: status }); }
  function shortId(id) { return id.slice(0, 8); }
  function runLink(id) { return el('a', { href: '#/runs/' + id, class: 'mono', text: shortId(id) }); }
  function errorBox(message) { return el('pre', { class: 'error', text: message }); }
  function overall(statuses) {
    for (var i = 0; i < PRIORITY.length; i++) if (statuses[PRIORITY[i]]) return PRIORITY[i];
    return 'waiting';
  }

  // The stacked bar of a run's task counts, one segment per status in a fixed order.
  function stackedBar(counts) {
    var total = 0;
    ORDER.forEach(function (s) { total += counts[s] || 0; });
    var bar = el('span', { class: 'bar', role: 'img', 'aria-label': ORDER.filter(function (s) { return counts[s]; }).map(function (s) { return s + ' ' + counts[s]; }).join(', ') || 'no tasks' });
    ORDER.forEach(function (s) {
      if (!counts[s]) return;
      bar.appendChild(el('span', { class: 'seg s-' + s, 'data-status': s, 'data-count': counts[s], title: s + ': ' + counts[s], style: 'width:' + (100 * counts[s] / total) + '%' }));
    });
    return bar;
  }
  function countsText(counts) {
    return ORDER.filter(function (s) { return counts[s]; }).map(function (s) { return counts[s] + ' ' + s; }).join(', ');
  }

  // One poll pending at a time: a reload by an action or a button replaces the one already waiting.
  function schedule(fn, ms) {
    var mine = generation;
    clearTimeout(timer);
    timer = setTimeout(function () { if (mine === generation) fn(); }, ms);
  }
  function setLive(on) { document.getElementById('live').hidden = !on; }

`;
