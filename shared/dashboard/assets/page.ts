/**
 * The dashboard's one HTML page: a shell that app.js fills from the JSON API. Links are relative, so the
 * page works at the root of `tickrun dev`'s server and behind `gcloud run services proxy` alike.
 */
export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>tickrun</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="app.css">
</head>
<body>
<header>
<a class="brand" href="#/">tickrun</a>
<nav><a href="#/" data-nav="runs">Runs</a><a href="#/workflows" data-nav="workflows">Workflows</a></nav>
<span id="live" hidden>live</span>
</header>
<main id="main"><p class="muted">Loading…</p></main>
<script src="app.js"></script>
</body>
</html>
`;
