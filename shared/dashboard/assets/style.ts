/** The dashboard's stylesheet; status colours are shared by badges, bars, graph nodes and timeline bars. */
export const STYLE_CSS = String.raw`
:root{--fg:#1d2330;--muted:#667085;--line:#e4e7ec;--bg:#f7f8fa;--card:#fff;--success:#2e9d5b;--failed:#d64545;--running:#2f7fd8;--dispatched:#5fa2e8;--claimed:#8dbbef;--queued:#d4a72c;--pending:#d4a72c;--waiting:#c4c8cf;--skipped:#98a2b3;--cancelled:#7a5cc0}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header{display:flex;align-items:center;gap:24px;padding:10px 24px;background:#111827;color:#fff}
header a{color:#d0d5dd;text-decoration:none}header a:hover,header a.on{color:#fff}
.brand{font-weight:700;color:#fff!important;letter-spacing:.02em}
nav{display:flex;gap:16px}
#live{margin-left:auto;font-size:12px;color:#9fe3b8}#live::before{content:"\25CF  "}
main{padding:20px 24px;max-width:1280px;margin:0 auto}
h1{font-size:20px;margin:0 0 4px}h2{font-size:15px;margin:24px 0 8px}
a{color:#175cd3}
.muted{color:var(--muted)}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:14px 16px;margin-bottom:16px}
table{border-collapse:collapse;width:100%;background:var(--card)}
th,td{text-align:left;padding:7px 10px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:12px;color:var(--muted);font-weight:600;background:#fafbfc}
tr:hover td{background:#fafbff}
code,pre,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12px}
pre{white-space:pre-wrap;word-break:break-word;margin:4px 0;padding:6px 8px;background:#f2f4f7;border-radius:4px}
pre.error{background:#fef3f2;color:#912018}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;color:#fff;background:var(--waiting)}
.s-success{background:var(--success);fill:var(--success)}.s-failed{background:var(--failed);fill:var(--failed)}
.s-running{background:var(--running);fill:var(--running)}.s-dispatched{background:var(--dispatched);fill:var(--dispatched)}
.s-claimed{background:var(--claimed);fill:var(--claimed)}.s-queued,.s-pending{background:var(--queued);fill:var(--queued)}
.s-waiting{background:var(--waiting);fill:var(--waiting)}.s-skipped{background:var(--skipped);fill:var(--skipped)}
.s-cancelled{background:var(--cancelled);fill:var(--cancelled)}
.bar{display:flex;width:160px;height:10px;border-radius:5px;overflow:hidden;background:var(--line)}
.bar .seg{display:block;height:100%}
.counts{font-size:11px;color:var(--muted)}
.filters{display:flex;gap:12px;align-items:center;margin-bottom:12px}
select,input,textarea,button{font:inherit}
select,input,textarea{padding:4px 6px;border:1px solid #d0d5dd;border-radius:6px;background:#fff}
button{padding:5px 12px;border-radius:6px;border:1px solid #d0d5dd;background:#fff;cursor:pointer}
button.primary{background:#175cd3;border-color:#175cd3;color:#fff}button.danger{color:#b42318;border-color:#fda29b}
button:disabled{opacity:.5;cursor:default}
.pager{display:flex;gap:12px;margin-top:12px}
.meta{display:grid;grid-template-columns:repeat(auto-fill,minmax(200px,1fr));gap:6px 16px;margin:10px 0}
.meta div span:first-child{display:block;font-size:11px;color:var(--muted)}
.actions{display:flex;gap:8px;align-items:center;margin-top:8px}
.message{font-size:13px}.message.err{color:#b42318}
svg{display:block;max-width:100%;height:auto}
svg text{font-size:12px;fill:var(--fg)}
.node rect{stroke:rgba(0,0,0,.15)}.node text{fill:#fff;font-weight:600}.node text.sub{font-weight:400;font-size:11px}
.node rect.stack{opacity:.45}.node text.tag{font-size:10px;font-weight:400;letter-spacing:.04em;opacity:.85}
.array-executions{margin-bottom:16px}.array-executions .counts{display:block;margin-top:2px}
.edge{fill:none;stroke:#98a2b3;stroke-width:1.5}
.attempt{stroke:rgba(0,0,0,.2)}svg text.attempt-label{fill:#fff;font-size:10px}
.axis{stroke:var(--line)}.tick{font-size:11px;fill:var(--muted)}
.runs-strip{display:flex;gap:3px}.runs-strip a{width:12px;height:12px;border-radius:2px;display:block}
.wf-head{display:flex;gap:12px;align-items:baseline;flex-wrap:wrap}
.trigger{display:grid;grid-template-columns:1fr 1fr auto;gap:8px;align-items:start;margin-top:10px}
.trigger textarea{min-height:54px}
details summary{cursor:pointer;color:var(--muted);font-size:12px}
`;
