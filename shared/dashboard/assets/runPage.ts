/**
 * The dashboard script's run page: the run's header with its cancel and retry buttons, its DAG as an
 * SVG graph, an array task's executions, the SVG timeline of every attempt, and each task's executions
 * with their links.
 * Part of app.js (see app.ts).
 */
export const RUN_PAGE_JS = String.raw`  // ---- one run ------------------------------------------------------------------------------------
  // A run's tasks come a page at a time (api/runs/ID?limit=...), a fan-out of thousands would otherwise
  // be megabytes every poll: the page shows the first 200 in graph order, more on demand up to 1,000,
  // and filters by task name and status. The graph always counts every task.
  function runPage(id) {
    var head = el('div', { class: 'card' });
    var graph = el('div', { class: 'card graph' });
    var arrays = el('div', { class: 'arrays' });
    var filters = el('div', { class: 'filters task-filters' });
    var timeline = el('div', { class: 'card timeline' });
    var tasks = el('div', { class: 'tasks' });
    var pager = el('div', { class: 'pager task-pager' });
    append(main, [head, el('h2', { text: 'Graph' }), graph, arrays, filters, el('h2', { text: 'Timeline' }), timeline, el('h2', { text: 'Tasks and executions' }), tasks, pager]);
    var message = el('span', { class: 'message' });
    var view = { limit: 200, task: '', status: '' };
    function query() {
      return '?limit=' + view.limit + (view.task ? '&task=' + encodeURIComponent(view.task) : '') + (view.status ? '&status=' + encodeURIComponent(view.status) : '');
    }
    function load() {
      return api('api/runs/' + encodeURIComponent(id) + query()).then(function (data) {
        drawHead(head, data.run, message, load);
        var depth = depths(data.graph);
        clear(graph); graph.appendChild(drawGraph(data.graph, depth));
        drawArrays(arrays, data.graph, !!LIVE[data.run.status]);
        if (!filters.firstChild) drawTaskFilters(filters, data.graph, view, load);
        clear(timeline); timeline.appendChild(drawTimeline(data.run, data.tasks));
        clear(tasks); tasks.appendChild(drawTasks(id, data.tasks));
        drawPager(pager, data, view, load);
        var live = !!LIVE[data.run.status];
        setLive(live);
        if (live) schedule(load, 2000);
      }).catch(function (err) { clear(head); head.appendChild(errorBox(err.message)); });
    }
    load();
  }

  function drawTaskFilters(box, graph, view, reload) {
    var task = el('select', { name: 'task', 'aria-label': 'task' }, [el('option', { value: '', text: 'every task' })].concat(graph.map(function (n) { return el('option', { value: n.name, text: n.name }); })));
    var status = el('select', { name: 'task-status', 'aria-label': 'task status' }, [el('option', { value: '', text: 'any status' })].concat(TASK_STATUSES.map(function (s) { return el('option', { value: s, text: s }); })));
    task.addEventListener('change', function () { view.task = task.value; view.limit = 200; reload(); });
    status.addEventListener('change', function () { view.status = status.value; view.limit = 200; reload(); });
    append(box, [el('span', { class: 'muted', text: 'Show' }), task, status]);
  }

  function drawPager(box, data, view, reload) {
    clear(box);
    if (data.taskCount <= data.tasks.length) return;
    var more = el('button', { 'data-action': 'more-tasks', text: 'Show ' + Math.min(200, 1000 - view.limit, data.taskCount - data.tasks.length) + ' more' });
    more.addEventListener('click', function () { view.limit = Math.min(1000, view.limit + 200); reload(); });
    append(box, [
      el('span', { class: 'muted task-count', text: 'Showing ' + data.tasks.length + ' of ' + data.taskCount + ' tasks' + (view.limit >= 1000 ? ': filter by task or status to see others' : '') }),
      view.limit < 1000 ? more : null
    ]);
  }

  function drawHead(head, run, message, reload) {
    clear(head);
    var cancel = el('button', { class: 'danger', 'data-action': 'cancel', text: 'Cancel run', disabled: !LIVE[run.status] });
    var retry = el('button', { class: 'primary', 'data-action': 'retry', text: 'Retry failed tasks', disabled: run.status !== 'failed' });
    function run_(button, path, confirmText) {
      button.addEventListener('click', function () {
        if (confirmText && !window.confirm(confirmText)) return;
        button.disabled = true;
        message.className = 'message';
        message.textContent = '\u2026';
        act(path, {}).then(function () { message.textContent = 'done'; reload(); })
          .catch(function (err) { message.className = 'message err'; message.textContent = err.message; button.disabled = false; });
      });
    }
    run_(cancel, 'api/runs/' + run.id + '/cancel', 'Cancel this run? Its executions in flight are cancelled too.');
    run_(retry, 'api/runs/' + run.id + '/retry', null);
    var params = Object.keys(run.params || {});
    append(head, [
      el('div', { class: 'wf-head' }, [el('h1', { text: run.workflow }), badge(run.status), el('span', { class: 'mono muted', text: run.id })]),
      el('div', { class: 'meta' }, [
        meta('Trigger', run.trigger === 'key' ? 'idempotency key ' + run.idempotencyKey : run.trigger === 'schedule' ? 'schedule, slot ' + time(run.scheduledFor) : 'manual'),
        meta('Created (UTC)', time(run.createdAt)), meta('Started', time(run.startedAt)), meta('Finished', time(run.finishedAt)),
        meta('Duration', duration(run.durationMs)), meta('Tasks', countsText(run.tasks)), meta('Workflow version', run.workflowVersion)
      ]),
      params.length ? el('table', { class: 'params' }, [el('tbody', {}, params.map(function (k) { return el('tr', {}, [el('th', { text: k }), el('td', { class: 'mono', text: run.params[k] })]); }))]) : null,
      run.error ? errorBox(run.error) : null,
      el('div', { class: 'actions' }, [cancel, retry, message])
    ]);
  }
  function meta(label, value) { return el('div', {}, [el('span', { text: label }), el('span', { text: value === null || value === undefined || value === '' ? '\u2013' : value })]); }

  // Column of each task name: the longest chain of dependencies before it.
  function depths(graph) {
    var byName = {}, depth = {};
    graph.forEach(function (n) { byName[n.name] = n; });
    function d(name, seen) {
      if (depth[name] !== undefined) return depth[name];
      if (seen[name] || !byName[name]) return 0;
      seen[name] = 1;
      var max = 0;
      byName[name].dependsOn.forEach(function (p) { max = Math.max(max, d(p, seen) + 1); });
      return (depth[name] = max);
    }
    graph.forEach(function (n) { d(n.name, {}); });
    return depth;
  }

  // An array task is one node: its counts are of indexes (one row each), on a third line what is neither
  // done nor failed; a stack of cards behind it marks it. Its lines need the wider, taller box.
  function drawGraph(graph, depth) {
    var hasArray = graph.some(function (n) { return n.array; });
    var W = hasArray ? 210 : 170, H = hasArray ? 60 : 46, GX = 70, GY = 18, PAD = 10;
    var columns = [], pos = {};
    graph.forEach(function (n) { (columns[depth[n.name]] = columns[depth[n.name]] || []).push(n); });
    var rows = 0;
    columns.forEach(function (col, x) {
      (col || []).forEach(function (n, y) { pos[n.name] = { x: PAD + x * (W + GX), y: PAD + y * (H + GY) }; });
      rows = Math.max(rows, (col || []).length);
    });
    var width = PAD * 2 + columns.length * W + Math.max(0, columns.length - 1) * GX;
    var height = PAD * 2 + rows * H + Math.max(0, rows - 1) * GY;
    var root = svg('svg', { class: 'dag', viewBox: '0 0 ' + width + ' ' + height, width: width, height: height, role: 'img', 'aria-label': 'task graph' });
    root.appendChild(svg('defs', {}, [svg('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto' }, [svg('path', { d: 'M0,0 L10,5 L0,10 z', fill: '#98a2b3' })])]));
    graph.forEach(function (n) {
      n.dependsOn.forEach(function (p) {
        if (!pos[p]) return;
        var x1 = pos[p].x + W, y1 = pos[p].y + H / 2, x2 = pos[n.name].x, y2 = pos[n.name].y + H / 2, mx = (x1 + x2) / 2;
        root.appendChild(svg('path', { class: 'edge', d: 'M' + x1 + ',' + y1 + ' C' + mx + ',' + y1 + ' ' + mx + ',' + y2 + ' ' + x2 + ',' + y2, 'marker-end': 'url(#arrow)' }));
      });
    });
    graph.forEach(function (n) {
      var status = overall(n.statuses);
      var done = n.statuses.success || 0;
      var g = svg('g', { class: 'node' + (n.array ? ' array' : ''), 'data-task': n.name, 'data-status': status, transform: 'translate(' + pos[n.name].x + ',' + pos[n.name].y + ')' }, [
        svg('title', { text: n.name + (n.array ? ' (array task, ' : ' (') + n.executor + ': ' + n.target + ')\n' + countsText(n.statuses) }),
        n.array ? svg('rect', { class: 'stack s-' + status, x: 4, y: -4, width: W, height: H, rx: 6 }) : null,
        svg('rect', { class: 's-' + status, width: W, height: H, rx: 6 }),
        svg('text', { x: 10, y: 19, text: clip(n.name, n.array ? 20 : 22) }),
        n.array ? svg('text', { class: 'tag', x: W - 8, y: 19, 'text-anchor': 'end', text: 'array' }) : null,
        svg('text', { class: 'sub', x: 10, y: 36, text: n.array ? clip(indexesText(n), 32) : done + '/' + n.count + ' succeeded' + (n.count > 1 ? ' (\u00d7' + n.count + ')' : '') }),
        n.array ? svg('text', { class: 'sub rest', x: 10, y: 52, text: clip(restText(n), 32) }) : null
      ]);
      root.appendChild(g);
    });
    return root;
  }
  function clip(text, n) { return text.length > n ? text.slice(0, n - 1) + '\u2026' : text; }
  function num(n) { return Number(n).toLocaleString('en-US'); }
  // "10,000 indexes: 9,997 \u2713 3 \u2717": of all its indexes, how many succeeded and failed.
  function indexesText(n) {
    var s = n.statuses.success, f = n.statuses.failed;
    return num(n.count) + ' indexes' + (s || f ? ':' : '') + (s ? ' ' + num(s) + ' \u2713' : '') + (f ? ' ' + num(f) + ' \u2717' : '');
  }
  // The other statuses (running, queued...) and the executions so far: "7 running, 3 queued \u00b7 2 executions".
  function restText(n) {
    var rest = ORDER.filter(function (s) { return s !== 'success' && s !== 'failed' && n.statuses[s]; }).map(function (s) { return num(n.statuses[s]) + ' ' + s; }).join(', ');
    var sent = n.array.executions.length;
    var executions = sent ? sent + (sent === 1 ? ' execution' : ' executions') : '';
    return rest && executions ? rest + ' \u00b7 ' + executions : rest || executions;
  }

  // Each array task's executions, a line each counted by index: its tasks' rows show one index at a time.
  function drawArrays(box, graph, live) {
    clear(box);
    graph.forEach(function (n) {
      if (!n.array) return;
      var rows = n.array.executions.map(function (e) {
        var took = e.sentAt && e.finishedAt ? duration(Date.parse(e.finishedAt) - Date.parse(e.sentAt)) : e.sentAt && live ? 'in flight' : '';
        return el('tr', { class: 'array-execution', 'data-execution': e.executionName || '', 'data-attempt': e.attempt }, [
          el('td', { class: 'mono', title: e.executionName || '', text: e.executionName ? (e.links ? e.executionName.split('/').pop() : e.executionName) : '(not sent)' }),
          el('td', { text: '#' + e.attempt }),
          el('td', { class: 'indexes', text: num(e.indexes) }),
          el('td', {}, [stackedBar(e.statuses), el('span', { class: 'counts', text: countsText(e.statuses) })]),
          el('td', { class: 'muted', text: time(e.sentAt) + (took ? ', ' + took : '') }),
          el('td', {}, e.links ? [el('a', { href: e.links.consoleUrl, target: '_blank', rel: 'noopener noreferrer', text: 'Cloud Run' }), ' ', el('a', { href: e.links.logsUrl, target: '_blank', rel: 'noopener noreferrer', text: 'Logs' })] : [])
        ]);
      });
      append(box, [
        el('h2', { text: 'Executions of array task ' + n.name }),
        rows.length ? el('table', { class: 'array-executions', 'data-task': n.name }, [
          el('thead', {}, [el('tr', {}, ['Execution', 'Attempt', 'Indexes', 'By status', 'Sent (UTC)', ''].map(function (h) { return el('th', { text: h }); }))]),
          el('tbody', {}, rows)
        ]) : el('p', { class: 'muted', text: 'No execution yet.' })
      ]);
    });
  }

  // One row per task, one bar per attempt, from its claim (or send) to its end, or to now while it runs.
  function drawTimeline(run, tasks) {
    var now = Date.now();
    var attempts = [];
    tasks.forEach(function (t, row) {
      t.attempts.forEach(function (a) {
        var start = Date.parse(a.claimedAt || a.sentAt || run.startedAt || run.createdAt);
        var end = a.finishedAt ? Date.parse(a.finishedAt) : (LIVE[run.status] ? now : start);
        attempts.push({ row: row, task: t, a: a, start: start, end: Math.max(end, start) });
      });
    });
    if (attempts.length === 0) return el('p', { class: 'muted', text: 'No attempt yet.' });
    var t0 = Math.min.apply(null, attempts.map(function (x) { return x.start; }));
    var t1 = Math.max.apply(null, attempts.map(function (x) { return x.end; }));
    var span = Math.max(t1 - t0, 1);
    var LABEL = 150, W = 760, ROW = 22, TOP = 20;
    var width = LABEL + W + 20, height = TOP + tasks.length * ROW + 4;
    var root = svg('svg', { class: 'gantt', viewBox: '0 0 ' + width + ' ' + height, width: width, height: height, role: 'img', 'aria-label': 'attempt timeline' });
    for (var i = 0; i <= 4; i++) {
      var x = LABEL + (W * i) / 4;
      root.appendChild(svg('line', { class: 'axis', x1: x, x2: x, y1: TOP - 4, y2: height }));
      root.appendChild(svg('text', { class: 'tick', x: x, y: 12, 'text-anchor': i === 0 ? 'start' : i === 4 ? 'end' : 'middle', text: '+' + duration((span * i) / 4) }));
    }
    tasks.forEach(function (t, row) {
      root.appendChild(svg('text', { x: 4, y: TOP + row * ROW + 15, text: clip(t.name + '[' + t.index + ']', 20) }));
    });
    attempts.forEach(function (x) {
      var left = LABEL + (W * (x.start - t0)) / span;
      var w = Math.max(3, (W * (x.end - x.start)) / span);
      var y = TOP + x.row * ROW + 3;
      var tip = x.task.name + '[' + x.task.index + '] attempt ' + x.a.attempt + ': ' + x.a.status + ', ' + duration(x.end - x.start) + (x.a.error ? '\n' + x.a.error : '');
      var g = svg('g', { class: 'attempt-bar', 'data-task': x.task.name + '[' + x.task.index + ']', 'data-attempt': x.a.attempt, 'data-status': x.a.status }, [
        svg('title', { text: tip }),
        svg('rect', { class: 'attempt s-' + x.a.status, x: left, y: y, width: w, height: ROW - 6, rx: 3 })
      ]);
      if (w > 26) g.appendChild(svg('text', { class: 'attempt-label', x: left + 4, y: y + 12, text: '#' + x.a.attempt }));
      root.appendChild(g);
    });
    return root;
  }

  function drawTasks(runId, tasks) {
    var rows = [];
    tasks.forEach(function (t) {
      rows.push(el('tr', { class: 'task', 'data-task': t.name + '[' + t.index + ']' }, [
        el('td', { class: 'mono', text: t.name + '[' + t.index + ']' }),
        el('td', {}, [badge(t.status)]),
        el('td', { text: t.attempt + ' of ' + t.maxAttempts }),
        el('td', {}, (t.attempts.length ? t.attempts.map(function (a) { return attemptLine(runId, t, a); }) : [el('span', { class: 'muted', text: t.nextAttemptAt ? 'next attempt at ' + time(t.nextAttemptAt) : 'not started' })])
          .concat(t.waiting ? [el('div', { class: 'muted waiting', text: t.waiting })] : [])
          .concat(t.error && !t.attempts.length ? [errorBox(t.error)] : []))
      ]));
    });
    return el('table', {}, [
      el('thead', {}, [el('tr', {}, ['Task', 'Status', 'Attempts', 'Executions'].map(function (h) { return el('th', { text: h }); }))]),
      el('tbody', {}, rows)
    ]);
  }
  function attemptLine(runId, t, a) {
    var took = a.finishedAt ? duration(Date.parse(a.finishedAt) - Date.parse(a.claimedAt || a.sentAt || a.finishedAt)) : '';
    var key = [runId, t.name, t.index, a.attempt].join('|');
    var box = el('div', { class: 'output-box' });
    var shown = LOADED_OUTPUT[key];
    if (shown) drawOutput(box, shown);
    else if (a.outputTail && a.outputTail.length) box.appendChild(el('pre', { class: 'output', text: a.outputTail.join('\n') }));
    // A Cloud Run attempt's logs cost a read of the project's Cloud Logging quota: loaded on a click,
    // never with the page's polls; a process attempt's whole output is a file read.
    var load = a.executionName ? el('button', {
      'data-action': 'load-logs',
      text: a.links ? 'Load logs' : 'Full output',
      onclick: function () {
        load.disabled = true;
        var q = '?task=' + encodeURIComponent(t.name) + '&index=' + t.index + '&attempt=' + a.attempt;
        api('api/runs/' + encodeURIComponent(runId) + '/logs' + q)
          .then(function (out) { LOADED_OUTPUT[key] = out; drawOutput(box, out); })
          .catch(function (err) { clear(box); box.appendChild(errorBox(err.message)); })
          .then(function () { load.disabled = false; });
      }
    }) : null;
    return el('div', { class: 'execution', 'data-attempt': a.attempt }, [
      el('span', { text: '#' + a.attempt + ' ' }), badge(a.status), ' ',
      el('span', { class: 'mono', title: a.executionName || '', text: a.executionName ? (a.links ? a.executionName.split('/').pop() : a.executionName) : '(not sent)' }), ' ',
      el('span', { class: 'muted', text: time(a.sentAt || a.claimedAt) + (took ? ', ' + took : '') }), ' ',
      a.links ? el('a', { href: a.links.consoleUrl, target: '_blank', rel: 'noopener noreferrer', text: 'Cloud Run' }) : null, ' ',
      a.links ? el('a', { href: a.links.logsUrl, target: '_blank', rel: 'noopener noreferrer', text: 'Logs' }) : null, ' ',
      load,
      a.error ? errorBox(a.error) : null,
      box
    ]);
  }

  // Output loaded on demand, by run|task|index|attempt: kept across the page's redraws while it polls.
  var LOADED_OUTPUT = {};
  function drawOutput(box, out) {
    clear(box);
    if (out.truncated) box.appendChild(el('p', { class: 'muted', text: 'Earlier lines left out.' }));
    if (out.error) {
      box.appendChild(errorBox('Cloud Logging could not be read: ' + out.error));
      if (out.logsUrl) box.appendChild(el('a', { href: out.logsUrl, target: '_blank', rel: 'noopener noreferrer', text: 'Open the logs in the console' }));
      return;
    }
    box.appendChild(out.lines.length ? el('pre', { class: 'output', text: out.lines.join('\n') }) : el('p', { class: 'muted', text: 'No output.' }));
  }

`;
