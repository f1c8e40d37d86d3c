import { COMMON_JS } from './common';
import { LIST_PAGES_JS } from './listPages';
import { RUN_PAGE_JS } from './runPage';

// The router: a page per hash (#/ runs, #/runs/ID one run, #/workflows), so the server serves one
// HTML page and relative links work under any path prefix. Leaving a page stops its polling.
const ROUTER_JS = String.raw`  // ---- routing ------------------------------------------------------------------------------------
  function route() {
    generation++;
    clearTimeout(timer);
    clear(main);
    setLive(false);
    var hash = location.hash.replace(/^#/, '') || '/';
    var q = hash.indexOf('?');
    var path = q < 0 ? hash : hash.slice(0, q);
    var query = new URLSearchParams(q < 0 ? '' : hash.slice(q + 1));
    var m = /^\/runs\/([^/]+)$/.exec(path);
    var page = m ? 'run' : path === '/workflows' ? 'workflows' : 'runs';
    document.querySelectorAll('[data-nav]').forEach(function (a) { a.className = a.getAttribute('data-nav') === page || (page === 'run' && a.getAttribute('data-nav') === 'runs') ? 'on' : ''; });
    if (m) runPage(decodeURIComponent(m[1]));
    else if (page === 'workflows') workflowsPage();
    else runsPage(query);
  }
  window.addEventListener('hashchange', route);
  route();
`;

/**
 * The dashboard's one script, app.js: plain ES2020 run as it is written (no build step), in one
 * closure made of the parts above. It reads the JSON API and draws the pages with DOM calls; every
 * text that comes from users (names, params, errors) goes through text nodes, never through HTML parsing.
 * ASCII only, other characters as escapes: one non-ASCII character doubles the memory each bundle's
 * source takes (test/unit/bundles.test.ts).
 */
export const APP_JS = `'use strict';
(function () {
${COMMON_JS}${LIST_PAGES_JS}${RUN_PAGE_JS}${ROUTER_JS}})();
`;
