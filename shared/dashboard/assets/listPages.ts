/**
 * The dashboard script's list pages: runs (filters, stacked bars, cursor paging, polling while a
 * run on the page is live) and workflows (definition, schedule, last runs, the trigger form).
 * Part of app.js (see app.ts).
 */
export const LIST_PAGES_JS = String.raw`  // ---- runs page ----------------------------------------------------------------------------------
  function runsPage(query) {
    var filters = el('div', { class: 'filters' });
    var body = el('div', {}, [el('p', { class: 'muted', text: 'Loading\u2026' })]);
    var regions = el('div', { class: 'regions' });
    append(main, [el('h1', { text: 'Runs' }), regions, filters, body]);
    // Cloud Run's limits per region (shared/regions.ts), refreshed with the runs.
    function loadRegions() {
      return api('api/regions').then(function (data) {
        clear(regions);
        if (data.regions.length === 0) return;
        append(regions, [el('table', { class: 'regions' }, [
          el('thead', {}, [el('tr', {}, ['Region', 'Run budget', 'Used (60 s)', '429s (1 h)', 'Running', 'Queued', ''].map(function (t) { return el('th', { text: t }); }))]),
          el('tbody', {}, data.regions.map(function (g) {
            return el('tr', { 'data-region': g.region }, [
              el('td', { class: 'mono', text: g.region }),
              el('td', { text: Math.round(g.rate) + (g.rate < g.runPerMinute ? ' of ' + g.runPerMinute : '') + '/min' }),
              el('td', { text: String(g.usedLastMinute) }),
              el('td', { text: String(g.throttledLastHour) }),
              el('td', { text: g.running + ' of ' + g.cap }),
              el('td', { text: String(g.queued) }),
              el('td', { class: 'muted', text: g.holding || '' })
            ]);
          }))
        ])]);
      }).catch(function () {});
    }
    var workflowSelect = el('select', { name: 'workflow', 'aria-label': 'workflow', onchange: go }, [el('option', { value: '', text: 'all workflows' })]);
    var statusSelect = el('select', { name: 'status', 'aria-label': 'status', onchange: go }, [el('option', { value: '', text: 'any status' })].concat(
      RUN_STATUSES.map(function (s) { return el('option', { value: s, text: s }); })));
    statusSelect.value = query.get('status') || '';
    append(filters, [workflowSelect, statusSelect]);
    api('api/workflows').then(function (data) {
      data.workflows.forEach(function (w) { workflowSelect.appendChild(el('option', { value: w.name, text: w.name })); });
      workflowSelect.value = query.get('workflow') || '';
    }).catch(function () {});
    function go() {
      var q = new URLSearchParams();
      if (workflowSelect.value) q.set('workflow', workflowSelect.value);
      if (statusSelect.value) q.set('status', statusSelect.value);
      location.hash = '#/?' + q.toString();
    }
    function load() {
      loadRegions();
      return api('api/runs?' + query.toString()).then(function (data) {
        clear(body);
        if (data.runs.length === 0) return append(body, [el('p', { class: 'muted', text: 'No runs.' })]);
        var rows = data.runs.map(function (r) {
          return el('tr', { 'data-run': r.id }, [
            el('td', {}, [runLink(r.id)]),
            el('td', { text: r.workflow }),
            el('td', {}, [badge(r.status)]),
            el('td', { title: r.idempotencyKey || r.scheduledFor || '', text: r.trigger === 'key' ? 'key ' + r.idempotencyKey : r.trigger }),
            el('td', { title: r.createdAt, text: time(r.startedAt || r.createdAt) }),
            el('td', { text: duration(r.durationMs) }),
            el('td', {}, [stackedBar(r.tasks), el('div', { class: 'counts', text: countsText(r.tasks) })])
          ]);
        });
        append(body, [el('table', { class: 'runs' }, [
          el('thead', {}, [el('tr', {}, ['Run', 'Workflow', 'Status', 'Trigger', 'Started (UTC)', 'Duration', 'Tasks'].map(function (t) { return el('th', { text: t }); }))]),
          el('tbody', {}, rows)
        ])]);
        var pager = el('div', { class: 'pager' });
        if (query.get('cursor')) { var first = new URLSearchParams(query); first.delete('cursor'); pager.appendChild(el('a', { href: '#/?' + first.toString(), text: '\u2190 Latest' })); }
        if (data.nextCursor) { var next = new URLSearchParams(query); next.set('cursor', data.nextCursor); pager.appendChild(el('a', { href: '#/?' + next.toString(), class: 'older', text: 'Older \u2192' })); }
        body.appendChild(pager);
        var live = data.runs.some(function (r) { return LIVE[r.status]; });
        setLive(live);
        if (live) schedule(load, 3000);
      }).catch(function (err) { clear(body); body.appendChild(errorBox(err.message)); });
    }
    load();
  }

  // ---- workflows ----------------------------------------------------------------------------------
  function workflowsPage() {
    var body = el('div', {}, [el('p', { class: 'muted', text: 'Loading\u2026' })]);
    append(main, [el('h1', { text: 'Workflows' }), body]);
    setLive(false);
    api('api/workflows').then(function (data) {
      clear(body);
      if (data.workflows.length === 0) return body.appendChild(el('p', { class: 'muted', text: 'No workflows: tickrun apply adds them.' }));
      data.workflows.forEach(function (w) { body.appendChild(workflowCard(w)); });
    }).catch(function (err) { clear(body); body.appendChild(errorBox(err.message)); });
  }

  function workflowCard(w) {
    // Stored definitions keep no key order: tasks are listed after those they depend on.
    var depth = depths(Object.keys(w.definition.tasks).map(function (n) { return { name: n, dependsOn: w.definition.tasks[n].dependsOn }; }));
    var names = Object.keys(w.definition.tasks).sort(function (a, b) { return (depth[a] - depth[b]) || (a < b ? -1 : 1); });
    var strip = el('div', { class: 'runs-strip' }, w.lastRuns.map(function (r) {
      return el('a', { href: '#/runs/' + r.id, class: 's-' + r.status, title: r.status + ' ' + time(r.createdAt), 'data-status': r.status });
    }));
    return el('div', { class: 'card workflow', 'data-workflow': w.name }, [
      el('div', { class: 'wf-head' }, [el('h2', { text: w.name }), el('span', { class: 'muted', text: w.description || '' }), el('a', { href: '#/?workflow=' + encodeURIComponent(w.name), text: 'runs' })]),
      el('div', { class: 'meta' }, [
        meta('Schedule', w.schedule ? w.schedule + ' (' + w.timezone + ')' : 'none'),
        meta('Next slot (UTC)', w.paused ? 'paused' : time(w.nextSlotAt)),
        meta('Concurrency', w.concurrency || 'unlimited'),
        meta('Version', w.version + ', applied ' + time(w.updatedAt)),
        el('div', {}, [el('span', { text: 'Last runs (latest first)' }), w.lastRuns.length ? strip : el('span', { class: 'muted', text: 'none yet' })])
      ]),
      el('table', {}, [el('tbody', {}, names.map(function (n) {
        var t = w.definition.tasks[n];
        return el('tr', {}, [
          el('td', { class: 'mono', text: n + (t.count > 1 ? ' \u00d7' + t.count : '') }),
          el('td', { text: t.executor }),
          el('td', { class: 'mono', text: t.executor === 'process' ? (t.command || []).join(' ') : t.job }),
          el('td', { text: t.dependsOn.length ? 'after ' + t.dependsOn.join(', ') : '' }),
          el('td', { class: 'muted', text: t.retries ? t.retries + (t.retries === 1 ? ' retry' : ' retries') : '' })
        ]);
      }))]),
      el('details', {}, [el('summary', { text: 'definition (JSON)' }), el('pre', { text: JSON.stringify(w.definition, null, 2) })]),
      triggerForm(w.name)
    ]);
  }

  // Params are written one key=value a line, as the CLI's --param takes them.
  function triggerForm(name) {
    var params = el('textarea', { name: 'params', placeholder: 'params, one key=value a line', 'aria-label': 'params' });
    var key = el('input', { name: 'idempotencyKey', placeholder: 'idempotency key (optional)', 'aria-label': 'idempotency key' });
    var message = el('div', { class: 'message' });
    var button = el('button', { class: 'primary', 'data-action': 'trigger', text: 'Trigger ' + name });
    button.addEventListener('click', function () {
      var body = { workflow: name, params: {} };
      var bad = null;
      params.value.split('\n').forEach(function (line) {
        if (!line.trim()) return;
        var eq = line.indexOf('=');
        if (eq < 1) { bad = bad || line; return; }
        body.params[line.slice(0, eq).trim()] = line.slice(eq + 1);
      });
      if (bad !== null) { message.className = 'message err'; message.textContent = 'not key=value: ' + bad; return; }
      if (key.value.trim()) body.idempotencyKey = key.value.trim();
      button.disabled = true;
      act('api/runs', body).then(function (r) { location.hash = '#/runs/' + r.runId; })
        .catch(function (err) { message.className = 'message err'; message.textContent = err.message; button.disabled = false; });
    });
    return el('div', { class: 'trigger' }, [params, key, button, message]);
  }

`;
